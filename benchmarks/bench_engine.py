"""CPU throughput of the engine at 1280x720 with the real v3.6 weights, and what precision costs in quality.

Configurations (all through :class:`vsrife.engine.Interpolator`, end to end: input checks, padding
to 1280x736, network, crop):

* ``fp32-plain``: ``precision="fp32", keep_freed_memory=False``: the official contiguous (NCHW)
  layout with glibc's default allocator behaviour (large blocks page-faulted in afresh each call; the
  engine's periodic heap trimming, :func:`vsrife.engine.devices.release_free_heap`, switched off);
  runs first, because the allocator setting of the others is process-wide and cannot be undone;
* ``fp32``: ``precision="fp32"``: the official layout, freed large blocks kept for reuse;
* ``fp32+channels_last``: fp32 in NHWC with oneDNN's direct convolutions (``precision="auto"`` on a
  CPU without native bf16 before the Winograd option, and on AVX-512 CPUs without native bf16);
* ``fp32+channels_last+winograd``: the same with NNPACK's Winograd 3x3 convolutions
  (:mod:`vsrife.arch.winograd`; what ``precision="auto"`` runs on CPUs without AVX-512);
* ``bf16``: ``precision="bf16"``: CPU autocast, channels_last (emulated, slow, without AVX512-BF16/AMX),
  with the inference layout (widths padded to multiples of 8, gains folded: :mod:`vsrife.arch.widen`);
* ``bf16-official-layout``: the same with the official widths (``inference_layout=False``);
* ``fp32+channels_last+compile``, ``bf16+compile``: ``torch_compile=True`` (inductor's fused C++
  kernels); the compile happens in the warm-up call, reported as ``first_call_s``.

Each configuration interpolates real bigbuckbunny triplets (k, k+2 -> k+1, even k, clean ones only):
the first is a warm-up, the next ``--iters`` (``--bf16-iters`` for bf16) are timed. The PSNR of
every configuration against the real frame and against the fp32 output is reported on the triplets
all of them ran. GFLOP per interpolation is counted once with ``torch.utils.flop_counter``
(convolutions and matmuls; a multiply-add is 2 FLOP; warps and resizes are not counted).

    python benchmarks/bench_engine.py                       # results/bench_engine.json + markdown table
    python benchmarks/bench_engine.py --iters 3 --bf16-iters 1
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
from torch.utils.flop_counter import FlopCounterMode

from vsrife.engine import Interpolator, cpu_has_native_bf16, devices
from vsrife.media import read_frames
from vsrife.models import load_model
from vsrife.quality import psnr, to_tensor, triplet_kind
from vsrife.samples import sample_path

RESULTS = Path(__file__).resolve().parent / "results"
CONFIGS = {  # name: Interpolator keyword arguments, in the order they run
    "fp32-plain": {"precision": "fp32", "keep_freed_memory": False},
    "fp32": {"precision": "fp32"},
    "fp32+channels_last": {"precision": "fp32", "channels_last": True, "winograd": False},
    "fp32+channels_last+winograd": {"precision": "fp32", "channels_last": True, "winograd": True},
    "bf16": {"precision": "bf16"},
    "bf16-official-layout": {"precision": "bf16", "inference_layout": False},
    "fp32+channels_last+compile": {"precision": "fp32", "channels_last": True, "torch_compile": True},
    "bf16+compile": {"precision": "bf16", "torch_compile": True},
}
DEFAULT_CONFIGS = [c for c in CONFIGS if not c.endswith("compile")]  # compiling takes minutes on small CPUs


def machine() -> dict:
    info: dict = {"cpu": platform.processor() or platform.machine(), "flags": []}
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        text = ""
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "model name":
            info["cpu"] = value.strip()
        elif key.strip() == "flags" and not info["flags"]:
            wanted = ("avx2", "fma", "avx512f", "avx512_bf16", "avx512_vnni", "amx_bf16", "amx_tile")
            info["flags"] = [f for f in value.split() if f in wanted]
    info |= {
        "logical_cpus": os.cpu_count(),
        "affinity_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "native_bf16": cpu_has_native_bf16(),
        "mkldnn": torch.backends.mkldnn.is_available(),
    }
    return info


def triplets(count: int, n_frames: int = 41) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor, int]]:
    frames = [to_tensor(f) for f in read_frames(sample_path("bigbuckbunny"), 0, n_frames)]
    out = []
    for k in range(0, n_frames - 2, 2):
        idx = (k, k + 1, k + 2)
        if all(triplet_kind(frames[i], frames[j]) == "ok" for i in idx for j in idx if i < j):
            out.append((frames[k], frames[k + 2], frames[k + 1], k))
        if len(out) == count:
            break
    return out


def count_flops(eng: Interpolator, a: torch.Tensor, b: torch.Tensor) -> tuple[float, tuple[int, int]]:
    f0, f1 = eng.prepare(a), eng.prepare(b)
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        eng.network(f0.image, f1.image, 0.5)
    return counter.get_total_flops() / 1e9, tuple(f0.image.shape[2:])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--iters", type=int, default=5, help="timed interpolations per fp32 configuration")
    ap.add_argument("--bf16-iters", type=int, default=2, help="timed interpolations for bf16 (slow here)")
    ap.add_argument("--configs", nargs="+", default=DEFAULT_CONFIGS, choices=list(CONFIGS))
    ap.add_argument("--out", type=Path, default=RESULTS / "bench_engine.json")
    ap.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0: torch's default)")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    info = machine()
    model = load_model("3.6")
    need = 1 + max(args.bf16_iters if c.startswith("bf16") else args.iters for c in args.configs)
    data = triplets(need)
    if len(data) < need:
        raise SystemExit(f"only {len(data)} clean triplets, need {need}")
    h, w = data[0][0].shape[2:]
    info["loadavg_before"] = os.getloadavg()
    plain = Interpolator(model, device="cpu", precision="fp32", keep_freed_memory=False)
    gflop, padded = count_flops(plain, data[0][0], data[0][1])

    runs: dict[str, dict] = {}
    outputs: dict[str, dict[int, torch.Tensor]] = {}
    release = devices.release_free_heap
    for name in [c for c in CONFIGS if c in args.configs]:
        eng = Interpolator(model, device="cpu", **CONFIGS[name])
        # the plain row is glibc's defaults: no periodic heap trimming either
        devices.release_free_heap = (lambda: False) if name == "fp32-plain" else release  # type: ignore[assignment]
        n = args.bf16_iters if name.startswith("bf16") else args.iters
        times, outs, first = [], {}, 0.0
        for i, (a, b, _, k) in enumerate(data[: n + 1]):
            t0 = time.perf_counter()
            outs[k] = eng.interpolate(a, b, 0.5)
            if i > 0:  # the first call is a warm-up (oneDNN primitive creation, compiling)
                times.append(time.perf_counter() - t0)
            else:
                first = time.perf_counter() - t0
        med = statistics.median(times)
        runs[name] = {
            "dtype": str(eng.dtype),
            "channels_last": eng.channels_last,
            "torch_compile": eng.torch_compile,
            "winograd": eng.winograd,
            "first_call_s": first,
            "timed": len(times),
            "seconds": times,
            "median_s": med,
            "interp_per_s": 1 / med,
            "gflop_per_s": gflop / med,
            "loadavg_after": os.getloadavg(),
        }
        outputs[name] = outs
        print(f"{name}: {med:.2f} s/interpolation ({1 / med:.3f}/s, {gflop / med:.1f} GFLOP/s) over {len(times)} "
              f"runs, load {runs[name]['loadavg_after'][0]:.2f}", file=sys.stderr, flush=True)  # fmt: skip

    common = sorted(set.intersection(*(set(o) for o in outputs.values())))
    truth = {k: gt for _, _, gt, k in data}
    for name, outs in outputs.items():
        q = runs[name]
        q["psnr_triplets"] = common
        q["psnr_vs_truth"] = [psnr(outs[k], truth[k]) for k in common]
        q["mean_psnr"] = statistics.fmean(q["psnr_vs_truth"])
        if "fp32" in outputs:
            ref = outputs["fp32"]
            q["delta_psnr_vs_fp32"] = statistics.fmean(psnr(outs[k], truth[k]) - psnr(ref[k], truth[k]) for k in common)
            q["psnr_vs_fp32_output"] = min(psnr(outs[k], ref[k]) for k in common)
            q["max_abs_diff_vs_fp32"] = max(float((outs[k] - ref[k]).abs().max()) for k in common)

    result = {
        "machine": info,
        "model": "3.6 (real weights)",
        "size": [int(w), int(h)],
        "padded": [padded[1], padded[0]],
        "gflop_per_interpolation": gflop,
        "runs": runs,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1))
    print(markdown(result))
    print(f"\nwritten {args.out}", file=sys.stderr)
    return 0


def markdown(result: dict) -> str:
    m = result["machine"]
    w, h = result["size"]
    pw, ph = result["padded"]
    lines = [
        f"Machine: {m['cpu']}, {m['logical_cpus']} logical CPUs, flags {' '.join(m['flags'])}, torch {m['torch']}, "
        f"{m['torch_threads']} torch threads, native bf16: {m['native_bf16']}; load average before "
        f"{m['loadavg_before'][0]:.2f}.",
        f"v3.6, {w}x{h} (padded {pw}x{ph}), {result['gflop_per_interpolation']:.1f} GFLOP per interpolation "
        "(FlopCounterMode).",
        "",
        "| configuration | s / interpolation (median) | interpolations/s | GFLOP/s | timed runs | load after "
        "| PSNR vs real (dB) | Δ PSNR vs fp32 (dB) | PSNR vs fp32 output (dB, min) | max abs diff vs fp32 |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, r in result["runs"].items():
        vs = (
            f"{r['delta_psnr_vs_fp32']:+.3f} | {r['psnr_vs_fp32_output']:.1f} | {r['max_abs_diff_vs_fp32']:.2g}"
            if "delta_psnr_vs_fp32" in r
            else "- | - | -"
        )
        lines.append(
            f"| {name} | {r['median_s']:.2f} | {r['interp_per_s']:.3f} | {r['gflop_per_s']:.1f} | {r['timed']} | "
            f"{r['loadavg_after'][0]:.2f} | {r['mean_psnr']:.2f} | {vs} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
