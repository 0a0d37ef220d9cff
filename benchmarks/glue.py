"""The CPU glue between convolutions, step by step: whole 720p interpolations, alternating in one process.

Four configurations of the default CPU engine (``precision="auto"``: bf16 on CPUs with native bf16,
else fp32 + channels_last), each a step of stop 17 on top of the one before:

* ``channels_last_glue``: frames, features and resized maps channels_last, as the network is (before);
* ``nchw_glue``: frames and features NCHW, every resized map made NCHW first
  (:func:`vsrife.arch.layers.cpu_glue` without its fp32 step);
* ``fp32_resizes``: bf16 maps resized in fp32 (``cpu_glue`` as shipped);
* ``row_strips``: warps split into row strips over the intra-op threads (:mod:`vsrife.arch.warp`; the default).

Per model (v3.6 with its real weights, 4.x with seeded random weights: speed does not depend on
them) on a real bigbuckbunny 1280x720 pair, ``--rounds`` alternating rounds (the first is a warm-up;
this kind of VM's speed drifts within minutes, alternating hits all alike). Also records which steps
leave the frame bit-identical and how far each is from the fp32 network's frame.
Run: ``python benchmarks/glue.py [--models 3.6 4.6 4.25 4.22.lite] [--rounds 6]``; writes
benchmarks/results/glue.json.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import statistics
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import torch
from gpu_bench import random_checkpoint  # benchmarks/ is the script's folder: on sys.path

import vsrife.arch.ifnet as ifnet
import vsrife.arch.legacy as legacy
import vsrife.arch.warp as warp
from vsrife.arch.layers import cpu_glue
from vsrife.engine import Interpolator, PreparedFrame
from vsrife.media import read_frames
from vsrife.quality import to_tensor
from vsrife.samples import sample_path

CONFIGS = ("channels_last_glue", "nchw_glue", "fp32_resizes", "row_strips")


def _layout_only(x: torch.Tensor) -> torch.Tensor:
    return x.contiguous() if x.device.type == "cpu" else x


@contextlib.contextmanager
def _configured(name: str) -> Iterator[None]:
    """Switch the glue back to an earlier step for the duration (module attributes, restored after)."""
    glue = {"channels_last_glue": lambda x: x, "nchw_glue": _layout_only}.get(name, cpu_glue)
    split = warp._SPLIT_MIN_PIXELS if name == "row_strips" else 1 << 62
    saved = ifnet.cpu_glue, legacy.cpu_glue, warp._SPLIT_MIN_PIXELS
    ifnet.cpu_glue = legacy.cpu_glue = glue
    warp._SPLIT_MIN_PIXELS = split
    try:
        yield
    finally:
        ifnet.cpu_glue, legacy.cpu_glue, warp._SPLIT_MIN_PIXELS = saved


def _checkpoint(version: str, folder: Path) -> str | None:
    """v3.6: its real weights (None); 4.x: gpu_bench's seeded official-layout file."""
    return None if version == "3.6" else str(random_checkpoint(version, folder))


def _channels_last(f: PreparedFrame) -> PreparedFrame:
    feats = None if f.features is None else f.features.contiguous(memory_format=torch.channels_last)
    return PreparedFrame(f.image.contiguous(memory_format=torch.channels_last), feats, f.height, f.width)


def bench(version: str, rounds: int, folder: Path) -> dict[str, object]:
    path = _checkpoint(version, folder)
    engine = Interpolator(version, model_path=path, device="cpu")
    exact = Interpolator(version, model_path=path, device="cpu", precision="fp32")
    a, b = (to_tensor(f) for f in read_frames(sample_path("bigbuckbunny"), 0, 2))
    f0, f1 = engine.prepare(a), engine.prepare(b)
    inputs = {name: (f0, f1) for name in CONFIGS}
    inputs["channels_last_glue"] = (_channels_last(f0), _channels_last(f1))
    ref = exact.interpolate(a, b)
    times: dict[str, list[float]] = {name: [] for name in CONFIGS}
    outs: dict[str, torch.Tensor] = {}
    with torch.inference_mode():
        for _ in range(rounds):
            for name in CONFIGS:
                with _configured(name):
                    start = time.perf_counter()
                    outs[name] = engine._run(*inputs[name], 0.5)[:, :, :720, :1280].float()
                    times[name].append(time.perf_counter() - start)
    med = {name: statistics.median(t[1:] or t) for name, t in times.items()}
    return {
        "precision": str(engine.dtype),
        "random_weights": path is not None,
        "median_s": med,
        "speedup_vs_channels_last_glue": {name: med["channels_last_glue"] / s for name, s in med.items()},
        "identical_to_previous_step": {
            later: bool(torch.equal(outs[earlier], outs[later])) for earlier, later in itertools.pairwise(CONFIGS)
        },
        "mean_abs_diff_vs_fp32": {name: float((out - ref).abs().mean()) for name, out in outs.items()},
        "all_s": times,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--models", nargs="+", default=["3.6", "4.6", "4.25", "4.22.lite"])
    ap.add_argument("--rounds", type=int, default=6, help="alternating rounds (the first is a warm-up)")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/glue.json"))
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    cpuinfo = Path("/proc/cpuinfo").read_text().splitlines()
    res: dict[str, object] = {
        "cpu": next((x.split(":", 1)[1].strip() for x in cpuinfo if x.startswith("model name")), "?"),
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "size": [1280, 720],
        "rounds": args.rounds,
        "configs": list(CONFIGS),
    }
    with tempfile.TemporaryDirectory() as tmp:
        for version in args.models:
            res[version] = bench(version, args.rounds, Path(tmp))
            short = {k: v for k, v in res[version].items() if k != "all_s"}  # type: ignore[union-attr]
            print(version, json.dumps(short, indent=1), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
