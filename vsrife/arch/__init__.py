"""Pure torch.nn RIFE networks (no VapourSynth, no file I/O)."""

from vsrife.arch.ifnet import FlowEstimate, IFNet
from vsrife.arch.network import RIFENet, build_network
from vsrife.arch.spec import ArchSpec
from vsrife.arch.warp import backward_warp

__all__ = ["ArchSpec", "FlowEstimate", "IFNet", "RIFENet", "backward_warp", "build_network"]
