"""HD v3.x block directions side by side vs one after the other: whole 720p interpolations, alternating.

The default CPU engine (fp32 + channels_last + Winograd where NNPACK applies) on a real 1280x720 pair
of bigbuckbunny, v3.6, with ``flownet.parallel_directions`` on (each direction of every block on half
of the cores, :func:`vsrife.arch.winograd.run_pair`) and off, in turn ``--rounds`` times in one process
(this VM's speed drifts by +-15 % within minutes; alternating hits both alike). Also checks that
both give the same frame bit for bit.
Run: ``python benchmarks/directions.py [--rounds 8] [--threads N]``; writes
benchmarks/results/directions.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

import torch

from vsrife.engine import Interpolator
from vsrife.media import read_frames
from vsrife.quality import to_tensor
from vsrife.samples import sample_path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rounds", type=int, default=8, help="alternating rounds (the first is a warm-up)")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/directions.json"))
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    engine = Interpolator("3.6", device="cpu")
    if not engine.winograd:
        raise SystemExit("the default CPU engine does not use Winograd here (AVX-512 or no NNPACK): nothing to compare")
    flownet = engine.network.flownet
    a, b = (to_tensor(f) for f in read_frames(sample_path("bigbuckbunny"), 0, 2))
    times: dict[str, list[float]] = {"side_by_side": [], "one_after_the_other": []}
    outs = {}
    for _ in range(args.rounds):
        for name in times:
            flownet.parallel_directions = name == "side_by_side"
            start = time.perf_counter()
            outs[name] = engine.interpolate(a, b)
            times[name].append(time.perf_counter() - start)
    flownet.parallel_directions = True
    cpuinfo = Path("/proc/cpuinfo").read_text().splitlines()
    med = {name: statistics.median(t[1:] or t) for name, t in times.items()}
    res = {
        "cpu": next((x.split(":", 1)[1].strip() for x in cpuinfo if x.startswith("model name")), "?"),
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "model": "3.6",
        "size": [1280, 720],
        "rounds": args.rounds,
        "median_s": med,
        "speedup": med["one_after_the_other"] / med["side_by_side"],
        "all_s": times,
        "identical_output": bool(torch.equal(outs["side_by_side"], outs["one_after_the_other"])),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(res, indent=2))
    print(json.dumps({k: v for k, v in res.items() if k != "all_s"}, indent=2))


if __name__ == "__main__":
    main()
