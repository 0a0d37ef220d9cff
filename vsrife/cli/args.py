"""Parsers for the CLI's value syntaxes (argparse ``type=`` functions) and shared option groups.

Each parser raises :class:`argparse.ArgumentTypeError` with a message that says what is accepted,
which argparse reports as ``vsrife: error: argument --fps: ...`` with exit status 2.
"""

from __future__ import annotations

import argparse
import re
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from vsrife.cli.errors import UsageError

__all__ = [
    "FrameRange",
    "Segment",
    "add_device_options",
    "add_filter_options",
    "add_model_options",
    "filter_kwargs",
    "parse_factor",
    "parse_fps",
    "parse_frames",
    "parse_positive_int",
    "parse_segment",
]

_NUMBER = re.compile(r"^\s*([+-]?\d+(?:\.\d*)?|[+-]?\.\d+)\s*(?:/\s*([+-]?\d+(?:\.\d*)?|[+-]?\.\d+)\s*)?$")


def _fraction(text: str, what: str, example: str) -> Fraction:
    """``"60000/1001"``, ``"2.5"`` or ``"60"`` as an exact fraction; must be positive and finite."""
    m = _NUMBER.match(text)
    if m is None:
        raise argparse.ArgumentTypeError(f"{what} {text!r} is not a number or a fraction like {example}")
    num = Fraction(m.group(1))
    den = Fraction(m.group(2)) if m.group(2) is not None else Fraction(1)
    if den == 0:
        raise argparse.ArgumentTypeError(f"{what} {text!r} has a zero denominator; use e.g. {example}")
    value = num / den
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{what} {text!r} must be positive, e.g. {example}")
    return value


def parse_fps(text: str) -> Fraction:
    """Target frame rate: ``60``, ``59.94`` or ``60000/1001``."""
    return _fraction(text, "frame rate", "60000/1001 or 60")


def parse_factor(text: str) -> Fraction:
    """Rate multiplier greater than 1: ``2``, ``2.5`` or ``5/2``."""
    value = _fraction(text, "factor", "2 or 5/2")
    if value <= 1:
        raise argparse.ArgumentTypeError(f"factor {text!r} must be greater than 1 (this only raises the frame rate)")
    if value.denominator > 1_000_000 or value.numerator > 1_000_000:
        raise argparse.ArgumentTypeError(f"factor {text!r} is too fine-grained; use a simple fraction like 5/2")
    return value


def parse_positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be at least 1")
    return value


def _int_or_none(part: str, text: str) -> int | None:
    part = part.strip()
    if not part:
        return None
    try:
        return int(part)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"frame range {text!r} must look like A:B (whole numbers, either may be left out)"
        ) from None


@dataclass(frozen=True)
class FrameRange:
    """``A:B`` with Python slice semantics: frames A .. B-1 (B exclusive); negatives count from the end."""

    start: int | None
    stop: int | None

    def resolve(self, total: int) -> tuple[int, int]:
        """Concrete ``(start, stop)`` within ``total`` frames; raises ValueError when empty."""
        start, stop, _ = slice(self.start, self.stop).indices(total)
        if stop <= start:
            raise ValueError(f"frame range {self} selects no frames of the {total} output frames")
        return start, stop

    def __str__(self) -> str:
        return f"{'' if self.start is None else self.start}:{'' if self.stop is None else self.stop}"


def parse_frames(text: str) -> FrameRange:
    """``A:B`` (B exclusive, like a Python slice), ``A:`` or ``:B``."""
    if text.count(":") != 1:
        raise argparse.ArgumentTypeError(f"frame range {text!r} must look like A:B (frames A .. B-1), e.g. 0:240")
    a, b = text.split(":")
    return FrameRange(_int_or_none(a, text), _int_or_none(b, text))


@dataclass(frozen=True)
class Segment:
    """Segment ``index`` (1-based) of ``count`` near-equal contiguous ranges of the output frames."""

    index: int
    count: int

    def resolve(self, total: int) -> tuple[int, int]:
        """``(start, stop)`` of this segment: floor((i-1)·N/n) .. floor(i·N/n), stop exclusive."""
        start = (self.index - 1) * total // self.count
        stop = self.index * total // self.count
        if stop <= start:
            raise ValueError(f"segment {self} is empty: the output has only {total} frames for {self.count} segments")
        return start, stop

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def parse_segment(text: str) -> Segment:
    """``i/n``: the i-th (counting from 1) of n segments."""
    m = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text)
    if m is None:
        raise argparse.ArgumentTypeError(f"segment {text!r} must look like i/n, e.g. 1/4 (the first of four)")
    index, count = int(m.group(1)), int(m.group(2))
    if count < 1 or not 1 <= index <= count:
        raise argparse.ArgumentTypeError(f"segment {text!r} must be i/n with i counting from 1 to n, e.g. 1/4 .. 4/4")
    return Segment(index, count)


# ------------------------------------------------------------------ model / filter options


def add_model_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("model")
    group.add_argument("--model", help="RIFE version (default: 3.6, available offline); see `vsrife models list`")
    group.add_argument("--model-path", type=existing_path,
                       help="checkpoint file or folder of official files instead of the model store")  # fmt: skip


def existing_path(text: str) -> str:
    """An argparse type: a file or folder that exists (``~`` expanded)."""
    if not Path(text).expanduser().exists():
        raise argparse.ArgumentTypeError(f"{text} does not exist")
    return text


def add_backend_options(group: argparse._ActionsContainer, compile_help: str, trt_help: str) -> None:
    """``--compile`` or ``--trt`` (one of them), and ``--trt-cache-dir``."""
    one = group.add_mutually_exclusive_group()
    one.add_argument("--compile", dest="torch_compile", action="store_true", help=compile_help)
    one.add_argument("--trt", action="store_true", help=trt_help)
    group.add_argument("--trt-cache-dir", metavar="DIR", help="folder of built TensorRT engines (default: user cache)")


def check_backend_options(args: argparse.Namespace) -> None:
    """``--trt-cache-dir`` only means something with ``--trt``."""
    if args.trt_cache_dir is not None and not args.trt:
        raise UsageError("--trt-cache-dir needs --trt (it is where TensorRT engines are kept)")
    if args.trt:
        from vsrife.engine import resolve_device

        try:
            device = resolve_device(args.device)
        except ValueError:
            return  # the device check names the problem
        if device.type != "cuda":
            raise UsageError(f"--trt needs a CUDA device (--device {args.device} is {device.type})")


def add_filter_options(parser: argparse.ArgumentParser) -> None:
    """Options that map one-to-one onto ``core.rife.RIFE`` arguments."""
    add_model_options(parser)
    g = parser.add_argument_group("interpolation (core.rife.RIFE arguments)")
    g.add_argument("--scale", type=float, default=1.0, help="flow resolution: 0.25, 0.5, 1, 2, 4 (0.5 for 4K)")
    g.add_argument("--ensemble", action="store_true", help="average with a mirrored second pass (slower)")
    g.add_argument("--no-sc", dest="sc", action="store_false", help="do not treat scene changes specially")
    g.add_argument("--sc-threshold", type=float, default=0.07, help="built-in scene-change metric threshold")
    g.add_argument("--sc-method", default="auto", help="auto, builtin or props (use _SceneChange* frame props)")
    g.add_argument("--on-cut", default="repeat", help="at a scene cut: repeat the previous frame or blend")
    g.add_argument("--skip", action="store_true", help="copy instead of interpolating between identical frames")
    g.add_argument("--skip-threshold", type=float, default=50.0, help="PSNR (dB) above which frames are identical")
    g.add_argument("--timestep-mode", default="auto", help="t != 1/2 on models without timestep input: linear/bisect")
    add_device_options(g, threads=True)
    add_backend_options(
        g,
        "torch.compile the network (faster after a compile of seconds to minutes)",
        "TensorRT engines (CUDA, extra trt; built once per model, size and GPU, cached)",
    )


def add_device_options(group: argparse._ActionsContainer, threads: bool = False) -> None:
    group.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    group.add_argument("--precision", default="auto", help="auto, fp32, fp16 (CUDA) or bf16")
    if threads:
        group.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")


def filter_kwargs(args: argparse.Namespace) -> dict[str, object]:
    """``core.rife.RIFE`` keyword arguments from parsed options (rate arguments excluded)."""
    check_backend_options(args)
    kwargs: dict[str, object] = {
        "scale": args.scale,
        "ensemble": int(args.ensemble),
        "sc": int(args.sc),
        "sc_threshold": args.sc_threshold,
        "sc_method": args.sc_method,
        "on_cut": args.on_cut,
        "skip": int(args.skip),
        "skip_threshold": args.skip_threshold,
        "device": args.device,
        "precision": args.precision,
        "timestep_mode": args.timestep_mode,
        "threads": args.threads,
        "torch_compile": int(args.torch_compile),
        "trt": int(args.trt),
    }
    if args.trt_cache_dir is not None:
        kwargs["trt_cache_dir"] = args.trt_cache_dir
    if args.model is not None:
        kwargs["model"] = args.model
    if args.model_path is not None:
        kwargs["model_path"] = args.model_path
    return kwargs
