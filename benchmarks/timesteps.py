"""Arbitrary t for models without a timestep input: "linear" vs "bisect" on real footage.

For each video, quadruples (k, k+1, k+2, k+3) from the first frames: predict k+1 (t = 1/3) and
k+2 (t = 2/3) from k and k+3 and compare with the real frames (PSNR, SSIM). Quadruples with a cut
(< 16 dB) or a near-duplicate (> 48 dB) between any two of their frames are skipped. Modes:

* ``linear``: one network call per output frame (t = 0.5 flows rescaled, mask logit shifted);
* ``bisect``: recursive t = 0.5 halving to depth 6, last interval blended (the engine's mode);
  also reported at depths 1..5 (same midpoints, computed once: free here), to show where it saturates;
* baselines: the neighbour average (1-t)·a + t·b, and repeating the nearer frame.

Cost is counted with a forward hook on the network: calls per output frame when both t of a pair
are requested (midpoints shared), and for a single t = 1/3.

    python benchmarks/timesteps.py                    # bikes + bigbuckbunny, frames 0-39, k = 0, 3, 6, ...
    python benchmarks/timesteps.py --videos bikes --frames 40 --step 3 --out /tmp/t.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch
from torch import Tensor

import vsrife.engine.interpolator as interpolator_module
from vsrife.engine import Interpolator
from vsrife.media import read_frames
from vsrife.models import load_model
from vsrife.quality import psnr, ssim, to_tensor, triplet_kind
from vsrife.samples import sample_path

TS = (1 / 3, 2 / 3)
DEPTHS = (1, 2, 3, 4, 5)  # extra bisect depths (the engine uses interpolator._BISECT_DEPTH = 6)
RESULTS = Path(__file__).resolve().parent / "results"


def clean(frames: list[Tensor], first: int, last: int) -> bool:
    idx = range(first, last + 1)
    return all(triplet_kind(frames[i], frames[j]) == "ok" for i in idx for j in idx if i < j)


class Calls:
    def __init__(self, module: torch.nn.Module) -> None:
        self.n = 0
        module.register_forward_hook(lambda *_: self._inc())

    def _inc(self) -> None:
        self.n += 1


def evaluate(video: str, n_frames: int, step: int, linear: Interpolator, bisect: Interpolator) -> dict:
    frames = [to_tensor(f) for f in read_frames(sample_path(video), 0, n_frames)]
    lin_calls, bis_calls = Calls(linear.network), Calls(bisect.network)
    modes = ["linear", "bisect", *(f"bisect-d{d}" for d in DEPTHS), "average", "nearest"]
    rows: list[dict] = []
    skipped = []
    seconds = {"linear": 0.0, "bisect": 0.0}
    calls = {"linear": 0, "bisect": 0}
    single_t_calls = None
    for k in range(0, n_frames - 3, step):
        if not clean(frames, k, k + 3):
            skipped.append(k)
            continue
        a, b = frames[k], frames[k + 3]
        fa = linear.prepare(a, key=(video, k))
        fb = linear.prepare(b, key=(video, k + 3))
        ga = bisect.prepare(a, key=(video, k))
        gb = bisect.prepare(b, key=(video, k + 3))
        for i, t in enumerate(TS):
            gt = frames[k + 1 + i]
            preds: dict[str, Tensor] = {}
            n0, t0 = lin_calls.n, time.perf_counter()
            preds["linear"] = linear.interpolate_prepared(fa, fb, t)
            seconds["linear"] += time.perf_counter() - t0
            calls["linear"] += lin_calls.n - n0
            n0, t0 = bis_calls.n, time.perf_counter()
            preds["bisect"] = bisect.interpolate_prepared(ga, gb, t, key=(video, k))
            seconds["bisect"] += time.perf_counter() - t0
            calls["bisect"] += bis_calls.n - n0
            if i == 0 and single_t_calls is None:
                single_t_calls = bis_calls.n - n0
            default_depth = interpolator_module._BISECT_DEPTH
            n0 = bis_calls.n
            try:
                for d in DEPTHS:  # prefixes of the depth-6 path: every midpoint is already cached
                    interpolator_module._BISECT_DEPTH = d
                    preds[f"bisect-d{d}"] = bisect.interpolate_prepared(ga, gb, t, key=(video, k))
            finally:
                interpolator_module._BISECT_DEPTH = default_depth
            assert bis_calls.n == n0, "depth variants should reuse cached midpoints"
            preds["average"] = a * (1 - t) + b * t
            preds["nearest"] = a if t < 0.5 else b
            row = {"k": k, "t": round(t, 4)}
            for m in modes:
                row[f"{m}_psnr"] = psnr(preds[m], gt)
                row[f"{m}_ssim"] = ssim(preds[m], gt)
            rows.append(row)
        print(f"  {video} k={k}: " + ", ".join(f"{m} {rows[-2][f'{m}_psnr']:.2f}/{rows[-1][f'{m}_psnr']:.2f}"
                                              for m in ("linear", "bisect", "average")), flush=True)  # fmt: skip
        linear.clear_cache()
        bisect.clear_cache()
    summary: dict[str, dict] = {}
    for t in TS:
        sel = [r for r in rows if r["t"] == round(t, 4)]
        summary[f"{t:.4f}"] = {
            m: {
                "psnr": statistics.fmean(r[f"{m}_psnr"] for r in sel),
                "ssim": statistics.fmean(r[f"{m}_ssim"] for r in sel),
            }
            for m in modes
        }
        summary[f"{t:.4f}"]["bisect_beats_linear"] = sum(r["bisect_psnr"] > r["linear_psnr"] for r in sel)
    outputs = len(rows)
    return {
        "video": video,
        "size": list(frames[0].shape[2:]),
        "frames": n_frames,
        "step": step,
        "quadruples": outputs // 2,
        "skipped_k": skipped,
        "rows": rows,
        "summary": summary,
        "calls_per_output": {m: calls[m] / outputs for m in calls} | {"bisect_single_t": single_t_calls},
        "seconds_per_output": {m: seconds[m] / outputs for m in seconds},
    }


def markdown(results: list[dict]) -> str:
    lines = [
        "| video | t | linear | bisect (depth 6) | average (1-t)·a+t·b | nearest frame | bisect > linear |",
        "|---|---|---|---|---|---|---|",
    ]
    for res in results:
        for t, s in res["summary"].items():
            cells = [f"{s[m]['psnr']:.2f} dB / {s[m]['ssim']:.4f}" for m in ("linear", "bisect", "average", "nearest")]
            n = res["quadruples"]
            lines.append(f"| {res['video']} ({n} quads) | {float(t):.3f} | " + " | ".join(cells)
                         + f" | {s['bisect_beats_linear']}/{n} |")  # fmt: skip
    lines += ["", "Bisect depth (PSNR dB, mean of t = 1/3 and 2/3; calls per output frame for a 1/3 + 2/3 pair):", ""]
    depths = [*(f"bisect-d{d}" for d in DEPTHS), "bisect"]
    lines.append("| video | " + " | ".join(f"depth {i + 1} ({(2 * (i + 1) - 1) / 2:.1f})" for i in range(6)) + " |")
    lines.append("|---|" + "---|" * 6)
    for res in results:
        vals = [statistics.fmean(res["summary"][t][m]["psnr"] for t in res["summary"]) for m in depths]
        lines.append(f"| {res['video']} | " + " | ".join(f"{v:.2f}" for v in vals) + " |")
    lines += ["", "Cost (network calls per output frame; seconds per output frame on this machine):", ""]
    lines.append("| video | linear calls | bisect calls (1/3+2/3 pair) | bisect (single t=1/3) | linear s | bisect s |")
    lines.append("|---|---|---|---|---|---|")
    for res in results:
        c, s = res["calls_per_output"], res["seconds_per_output"]
        lines.append(f"| {res['video']} | {c['linear']:.1f} | {c['bisect']:.1f} | {c['bisect_single_t']} | "
                     f"{s['linear']:.2f} | {s['bisect']:.2f} |")  # fmt: skip
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--videos", nargs="+", default=["bikes", "bigbuckbunny"])
    ap.add_argument("--frames", type=int, default=40, help="use frames 0 .. FRAMES-1")
    ap.add_argument("--step", type=int, default=3, help="k = 0, STEP, 2*STEP, ...")
    ap.add_argument("--precision", default="auto")
    ap.add_argument("--out", type=Path, default=RESULTS / "timesteps.json")
    ap.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0: torch's default)")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    model = load_model("3.6")
    linear = Interpolator(model, device="cpu", precision=args.precision, timestep_mode="linear")
    bisect = Interpolator(model, device="cpu", precision=args.precision, timestep_mode="bisect")
    load_before = os.getloadavg()
    start = time.perf_counter()
    results = [evaluate(v, args.frames, args.step, linear, bisect) for v in args.videos]
    info = {
        "model": "3.6 (real weights)",
        "precision": args.precision,
        "dtype": str(linear.dtype),
        "channels_last": linear.channels_last,
        "bisect_depth": interpolator_module._BISECT_DEPTH,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "loadavg_before": load_before,
        "loadavg_after": os.getloadavg(),
        "wall_seconds": time.perf_counter() - start,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"info": info, "results": results}, indent=1))
    print(markdown(results))
    print(f"\nwritten {args.out}; load average before {load_before}, after {info['loadavg_after']}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
