"""CPU target of the speed issue: full VapourSynth path vs a plain eager fp32 forward, in one run.

Baseline: the v3.6 network, official memory layout, fp32, eager, called directly on padded
1280x736 tensors (interpolations/s), timed before and after the path; the faster of the two counts
(a busy machine then lowers the ratio, never raises it). Path: ``vspipe`` on a .vpy that feeds bigbuckbunny as RGB24
1280x720 to ``core.rife.RIFE`` with default arguments (2x): output frames/s as vspipe reports.
With 2x every other output frame is a source frame, so output fps counts both. Also prints the
quality cost of the default precision against fp32 on a few real triplets.
``--compile`` also renders with ``torch_compile=True``: a first short run fills inductor's on-disk
cache (as any earlier render of the same size would), then steady output fps = the difference of a
short and a long run (start-up and loading the compiled kernels cancel), for both paths.
``--steady`` does the same for the default path alone (throughput without the process start-up,
model load and first-frame set-up that the single run includes).
Run: ``python benchmarks/cpu_path.py [--frames 96] [--iters 3] [--steady] [--compile]``;
writes benchmarks/results/cpu_path.json.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from vsrife.engine import Interpolator
from vsrife.media import read_frames
from vsrife.models import load_model
from vsrife.quality import psnr, to_tensor
from vsrife.samples import sample_path

SCRIPT = """
import vapoursynth as vs
from vsrife.filter.source import open_video
clip = open_video(r"{src}")
clip = vs.core.resize.Bicubic(clip, format=vs.RGB24, matrix_in_s="709")
try:
    RIFE = vs.core.rife.RIFE  # the installed plugin
except AttributeError:  # run from a source tree without the native shim: the same function
    from vsrife import RIFE
RIFE(clip{extra}).set_output()
"""


def baseline(iters: int) -> float:
    net = load_model().network.eval()
    a = torch.rand(1, 3, 736, 1280)
    b = torch.roll(a, 8, 3)
    with torch.no_grad():
        net(a, b)
        start = time.perf_counter()
        for _ in range(iters):
            net(a, b)
    return iters / (time.perf_counter() - start)


def vspipe_fps(frames: int, torch_compile: bool = False) -> tuple[float, str]:
    sibling = Path(sys.executable).with_name("vspipe")
    vspipe = sibling if sibling.exists() else Path(shutil.which("vspipe") or "vspipe")
    with tempfile.NamedTemporaryFile("w", suffix=".vpy", delete=False) as fh:
        fh.write(SCRIPT.format(src=sample_path("bigbuckbunny"), extra=", torch_compile=True" if torch_compile else ""))
    try:
        proc = subprocess.run(
            [str(vspipe), "-p", "--start", "0", "--end", str(frames - 1), fh.name, "--"],
            capture_output=True, text=True, check=True, env=os.environ,
        )  # fmt: skip
    finally:
        os.unlink(fh.name)
    line = next(x for x in reversed(proc.stderr.splitlines()) if x.startswith("Output"))
    match = re.search(r"\(([\d.]+) fps\)", line)
    assert match, line
    return float(match.group(1)), line


def steady_fps(frames: int, torch_compile: bool) -> dict[str, float]:
    """Output fps without start-up: (long - short frames) / (long - short seconds), vspipe's own timing."""
    if torch_compile:
        vspipe_fps(2, True)  # fills inductor's cache
    runs = {}
    for label, count in (("short", max(frames // 4, 2)), ("long", frames)):
        fps, _ = vspipe_fps(count, torch_compile)
        runs[label] = (count, count / fps)
    dn, dt = runs["long"][0] - runs["short"][0], runs["long"][1] - runs["short"][1]
    return {"short_fps": runs["short"][0] / runs["short"][1], "long_fps": runs["long"][0] / runs["long"][1],
            "steady_fps": dn / dt if dt > 0 else float("nan")}  # fmt: skip


def precision_cost(count: int) -> dict[str, float]:
    frames = read_frames(sample_path("bigbuckbunny"), 0, 2 * count + 1)
    fp32 = Interpolator(device="cpu", precision="fp32")
    auto = Interpolator(device="cpu")
    d_auto, d_ref = [], []
    for k in range(0, 2 * count, 2):
        a, gt, b = (to_tensor(frames[k + i]) for i in range(3))
        d_ref.append(psnr(fp32.interpolate(a, b), gt))
        d_auto.append(psnr(auto.interpolate(a, b), gt))
    return {"fp32_psnr": sum(d_ref) / count, "auto_psnr": sum(d_auto) / count,
            "auto_cost_db": (sum(d_ref) - sum(d_auto)) / count, "auto_precision": str(auto.dtype),
            "auto_channels_last": auto.channels_last, "auto_winograd": auto.winograd}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--frames", type=int, default=96, help="output frames rendered through vspipe")
    ap.add_argument("--iters", type=int, default=3, help="timed eager forwards")
    ap.add_argument("--quality-triplets", type=int, default=3)
    ap.add_argument("--steady", action="store_true", help="also the default path's steady fps (short vs long run)")
    ap.add_argument("--compile", action="store_true", help="also the path with torch_compile=True (steady fps)")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/cpu_path.json"))
    args = ap.parse_args()
    load = os.getloadavg()[0]
    before = baseline(args.iters)
    fps, line = vspipe_fps(args.frames)
    compiled = {}
    if args.steady or args.compile:
        compiled["default"] = steady_fps(args.frames, False)
    if args.compile:
        compiled["torch_compile"] = steady_fps(args.frames, True)
    after = baseline(args.iters)  # still plain: no Interpolator was made in this process yet
    base = max(before, after)
    cpuinfo = Path("/proc/cpuinfo").read_text().splitlines()
    res = {
        "cpu": next((x.split(":", 1)[1].strip() for x in cpuinfo if x.startswith("model name")), "?"),
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "load_before": load,
        "baseline_interpolations_per_s": base,
        "baseline_before_after": [before, after],
        "vspipe_output_fps": fps,
        "vspipe": line,
        "ratio": fps / base,
        "steady": compiled,
        "ratio_steady": {k: v["steady_fps"] / base for k, v in compiled.items()},
        "quality": precision_cost(args.quality_triplets),
        "load_after": os.getloadavg()[0],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(res, indent=2))
    print(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
