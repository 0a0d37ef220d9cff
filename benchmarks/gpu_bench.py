"""GPU (or CPU dry-run) throughput: model alone and the full VapourSynth path.

Targets (issue "Speed"): a 4.6-architecture model (random weights), 1920x1080 RGBH, 2x, through
the filter: >= 1000 output fps and <= 2 GB GPU memory on one H100; 4.25 and v3.6 reported too.
Writes one JSON file. Run: ``python benchmarks/gpu_bench.py --out out/gpu_bench.json``.
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from vsrife.arch import build_network
from vsrife.engine import Interpolator
from vsrife.models import get_model, load_model


def random_checkpoint(version: str, folder: Path) -> Path:
    """Official-layout checkpoint with seeded random weights (speed does not depend on values)."""
    torch.manual_seed(0)
    net = build_network(get_model(version).spec)
    path = folder / f"flownet_v{version}.pkl"
    torch.save({f"module.{k}": v for k, v in net.flownet.state_dict().items()}, path)
    return path


def model_alone(engine: Interpolator, width: int, height: int, frames: int) -> dict[str, float]:
    dev = engine.device
    a = torch.rand(1, 3, height, width, device=dev)
    b = torch.roll(a, 8, 3)
    f0, f1 = engine.prepare(a, key="a"), engine.prepare(b, key="b")
    engine.interpolate_prepared(f0, f1, 0.5)  # warm-up
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
        torch.cuda.reset_peak_memory_stats(dev)
    start = time.perf_counter()
    for _ in range(frames):
        engine.interpolate_prepared(f0, f1, 0.5)
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
    elapsed = time.perf_counter() - start
    out = {"interpolations_per_s": frames / elapsed}
    if dev.type == "cuda":
        out["peak_gpu_mib"] = torch.cuda.max_memory_allocated(dev) / 2**20
    return out


def filter_path(model_path: Path, model: str, width: int, height: int, frames: int, device: str) -> dict[str, Any]:
    try:
        import vapoursynth as vs
    except ImportError:
        return {"skipped": "vapoursynth is not installed"}
    from vsrife.filter import RIFE

    core = vs.core
    clip = core.std.BlankClip(format=vs.RGBH, width=width, height=height, length=frames // 2 + 2, fpsnum=24)
    out = RIFE(clip, model=model, model_path=str(model_path), device=device)
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    out.get_frame(1)  # warm-up (model load, first frames)
    start = time.perf_counter()
    n = min(frames, out.num_frames)
    for i in range(2, n):
        out.get_frame(i)
    elapsed = time.perf_counter() - start
    res: dict[str, Any] = {"output_fps": (n - 2) / elapsed, "output_frames": n - 2}
    if torch.cuda.is_available():
        res["peak_gpu_mib"] = torch.cuda.max_memory_allocated() / 2**20
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--width", type=int, default=1920)
    ap.add_argument("--height", type=int, default=1080)
    ap.add_argument("--frames", type=int, default=200)
    ap.add_argument("--models", default="4.6,4.25,3.6")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/gpu_bench.json"))
    args = ap.parse_args()
    results: dict[str, Any] = {
        "torch": torch.__version__,
        "python": platform.python_version(),
        "device": torch.cuda.get_device_name() if torch.cuda.is_available() else platform.processor() or "cpu",
        "size": [args.width, args.height],
        "models": {},
    }
    with tempfile.TemporaryDirectory() as tmp:
        for version in args.models.split(","):
            path = random_checkpoint(version, Path(tmp)) if version != "3.6" else load_model("3.6").paths[0]
            engine = Interpolator(version, model_path=str(path), device=args.device)
            entry: dict[str, Any] = {"precision": str(engine.dtype), "random_weights": version != "3.6"}
            entry["model"] = model_alone(engine, args.width, args.height, args.frames)
            entry["filter"] = filter_path(path, version, args.width, args.height, args.frames, args.device)
            results["models"][version] = entry
            print(version, json.dumps(entry), flush=True)
            del engine
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
