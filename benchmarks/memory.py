"""Resident memory over a long render: must stay flat (<= 50 MB growth over 10,000 output frames).

Real footage (bikes, resized to 640x360 YUV420P8, looped) through ``core.rife.RIFE`` 2x, frames
requested in order like vspipe does; RSS (VmRSS) sampled every ``--every`` frames.

Growth is the rise of the peak: the highest RSS over the last ``--window`` frames less the highest
over the first ``--window`` frames after warm-up (caches filled). RSS swings within every few seconds
(the CPU engine hands free heap pages back at most every 2 s and the next calls fault their
temporaries in again: 870-1050 MiB at 640x360, scale 0.25, with the directions side by side or one
after the other), so a single sample is anywhere in that swing; the peak over a window of dense
samples is not. Also reported: the older measure, first sample after warm-up to the maximum
afterwards (which a sparse ``--every`` turns into a draw from the swing).
``--scale 0.25`` keeps the run short on a CPU (flow at quarter resolution; same pipeline, same
caches). Run: ``python benchmarks/memory.py [--frames 10000] [--scale 0.25]``.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--frames", type=int, default=10_000)
    ap.add_argument("--every", type=int, default=25, help="sample RSS every N output frames")
    ap.add_argument("--window", type=int, default=1000, help="frames whose peak RSS is compared (first vs last)")
    ap.add_argument("--warmup", type=int, default=2000)
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--max-cache-mb", type=int, default=0, help="core.max_cache_size (0: VapourSynth's default)")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/memory.json"))
    args = ap.parse_args()

    import vapoursynth as vs

    from vsrife.filter.source import open_video
    from vsrife.samples import sample_path

    core = vs.core
    if args.max_cache_mb:
        core.max_cache_size = args.max_cache_mb
    src = core.resize.Bicubic(open_video(sample_path("bikes")), 640, 360)
    loops = args.frames // (2 * src.num_frames) + 1
    clip = core.std.Loop(src, loops)
    out = core.rife.RIFE(clip, scale=args.scale, threads=args.threads)
    samples: list[tuple[int, float, float]] = []  # (frame, RSS MiB, VapourSynth frame cache MiB)
    start = time.perf_counter()
    for n in range(min(args.frames, out.num_frames)):
        out.get_frame(n)
        if n % args.every == 0 or n == args.frames - 1:
            samples.append((n, rss_mib(), core.used_cache_size / 2**20))
            if n % (20 * args.every) == 0:
                print(f"frame {n}: RSS {samples[-1][1]:.1f} MiB (VapourSynth cache {samples[-1][2]:.1f} MiB), "
                      f"{n / (time.perf_counter() - start + 1e-9):.2f} fps", flush=True)  # fmt: skip
    after = [(n, m, c) for n, m, c in samples if n >= args.warmup]
    last = max(n for n, _, _ in after) if after else 0
    first_window = [(m, c) for n, m, c in after if n < args.warmup + args.window]
    last_window = [(m, c) for n, m, c in after if n > last - args.window]
    growth = max(m for m, _ in last_window) - max(m for m, _ in first_window) if after else float("nan")
    # RSS less VapourSynth's own frame cache (bounded by max_cache_size): what the filter adds
    growth_own = max(m - c for m, c in last_window) - max(m - c for m, c in first_window) if after else float("nan")
    first_to_max = max(m for _, m, _ in after) - after[0][1] if after else float("nan")
    swing = max(m for _, m, _ in after) - min(m for _, m, _ in after) if after else float("nan")
    res = {
        "frames": args.frames,
        "size": "640x360",
        "scale": args.scale,
        "samples": samples,
        "window_frames": args.window,
        "growth_mib_after_warmup": growth,
        "growth_mib_after_warmup_less_vs_cache": growth_own,
        "first_sample_to_max_mib": first_to_max,
        "swing_mib_after_warmup": swing,
        "max_cache_mb": core.max_cache_size,
        "seconds": time.perf_counter() - start,
        "load_average": os.getloadavg(),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(res, indent=2))
    print(
        f"Peak RSS growth after warm-up: {growth:.1f} MiB (target <= 50 MB); "
        f"less VapourSynth's frame cache: {growth_own:.1f} MiB; swing {swing:.1f} MiB; "
        f"first sample to max {first_to_max:.1f} MiB"
    )


if __name__ == "__main__":
    main()
