"""HD v3.x flow + mask heads at the finest block's working grid: three ways, same process, alternating.

The heads (ConvTranspose 4/2/1 -> PReLU -> ConvTranspose 4/2/1, for the flow and for the mask) of the
real v3.6 block2, on random features of the size a 1280x720 frame gives (90 x 184 x 320):

* ``convtranspose``: the official modules (oneDNN, channels_last input as the engine feeds them);
* ``winograd-dense``: both stages as NNPACK Winograd phase convolutions (the second stage a dense
  3x3 convolution on the phases, mostly zero taps) and a pixel shuffle (the previous engine; it ran
  them inside the one-thread section, here the second stage runs with every thread);
* ``winograd+gemm``: :class:`vsrife.arch.winograd.SubPixelHeads` as the engine runs it: first stage
  by NNPACK, second stage one GEMM per head with the shifted sums (the current engine).

Reports the median over ``--rounds`` and the max abs difference from the official modules, then
whole interpolations of a real 1280x720 pair by the default engine with either second stage
(``--engine-rounds``, alternating in one process, so this VM's drift hits both alike).
Run: ``python benchmarks/heads.py [--rounds 10] [--engine-rounds 8]``; writes benchmarks/results/heads.json.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor

from vsrife.arch.ifnet import IFBlockV3
from vsrife.arch.winograd import SubPixelHeads, _second_stage, _winograd_conv, winograd_available
from vsrife.engine import Interpolator, devices
from vsrife.media import read_frames
from vsrife.models import load_model
from vsrife.quality import to_tensor
from vsrife.samples import sample_path


class DenseWinogradHeads(SubPixelHeads):
    """The previous engine's heads: the second stage as a dense 3x3 Winograd convolution on the phases."""

    def __init__(self, flow_head: torch.nn.Sequential, mask_head: torch.nn.Sequential) -> None:
        super().__init__(flow_head, mask_head)
        self.dense = [(_second_stage(h[2].weight.float()).contiguous(), h[2].bias.float().repeat_interleave(16))
                      for h in (flow_head, mask_head)]  # fmt: skip

    def second(self, phases: Tensor) -> tuple[Tensor, Tensor]:
        p = F.prelu(phases, self.slope)
        flow = F.pixel_shuffle(_winograd_conv(p[:, : self.split], *self.dense[0]), 4)
        mask = F.pixel_shuffle(_winograd_conv(p[:, self.split :], *self.dense[1]), 4)
        return flow, mask


def alternate(ways: dict[str, Callable[[], object]], rounds: int) -> dict[str, float]:
    """Median seconds of each way, run in turn ``rounds`` times (drift hits all of them alike)."""
    times: dict[str, list[float]] = {name: [] for name in ways}
    for _ in range(rounds):
        for name, fn in ways.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}


def engine_ab(rounds: int) -> dict[str, float]:
    """Whole 1280x720 interpolations (real frames, default engine) with either second stage."""
    gemm = Interpolator(device="cpu")
    dense = Interpolator(device="cpu")
    dense.network = copy.deepcopy(gemm.network)  # engines share placed networks: give this one its own
    for block in dense.network.modules():
        if isinstance(block, IFBlockV3) and block.subpixel_heads is not None:
            block.subpixel_heads = DenseWinogradHeads(block.conv1, block.conv2)
    a, b = (to_tensor(f) for f in read_frames(sample_path("bigbuckbunny"), 0, 2))
    for engine in (gemm, dense):
        engine.interpolate(a, b)  # warm-up
    return alternate({"winograd-dense": lambda: dense.interpolate(a, b),
                      "winograd+gemm": lambda: gemm.interpolate(a, b)}, rounds)  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rounds", type=int, default=10, help="alternating rounds of the heads alone")
    ap.add_argument("--engine-rounds", type=int, default=8, help="alternating whole interpolations (0: skip)")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/heads.json"))
    args = ap.parse_args()
    if not winograd_available():
        raise SystemExit("this PyTorch build has no NNPACK")
    devices.keep_freed_memory()  # as the engine does at this size
    block = load_model("3.6").network.flownet.block2.eval()
    heads = SubPixelHeads(block.conv1, block.conv2)
    feat = torch.randn(1, 90, 184, 320)
    feat_cl = feat.contiguous(memory_format=torch.channels_last)
    dense = DenseWinogradHeads(block.conv1, block.conv2)
    ways: dict[str, Callable[[], tuple[Tensor, Tensor]]] = {
        "convtranspose": lambda: (block.conv1(feat_cl), block.conv2(feat_cl)),
        "winograd-dense": lambda: dense(feat),
        "winograd+gemm": lambda: heads(feat),
    }
    with torch.no_grad():
        ref = ways["convtranspose"]()
        errors = {name: max(float((a - b).abs().max()) for a, b in zip(fn(), ref, strict=True))
                  for name, fn in ways.items()}  # fmt: skip
        times = alternate(ways, args.rounds)  # type: ignore[arg-type]
    cpuinfo = Path("/proc/cpuinfo").read_text().splitlines()
    res = {
        "cpu": next((x.split(":", 1)[1].strip() for x in cpuinfo if x.startswith("model name")), "?"),
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "features": list(feat.shape),
        "heads_median_ms": {name: 1e3 * t for name, t in times.items()},
        "max_abs_diff_vs_convtranspose": errors,
        "engine_median_s": engine_ab(args.engine_rounds) if args.engine_rounds else None,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(res, indent=2))
    print(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
