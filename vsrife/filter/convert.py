"""Plane-format <-> RGB conversion in torch (CPU or CUDA), following VapourSynth / zimg conventions.

``ColorConverter.to_rgb`` turns the planes of one frame (any constant RGB / YUV / GRAY format, integer
8-16 bit or float 16/32 bit) into a (1, 3, H, W) float32 RGB tensor in [0, 1] nominal;
``ColorConverter.from_rgb`` goes back to the native planes. Each frame's props choose matrix, range and
chroma siting. No VapourSynth import at module level (``PlaneFormat.from_vs`` imports it lazily).

Conventions (zimg, as used by ``core.resize``):

* ``_Matrix``: 1 BT.709, 4 FCC, 5/6 BT.601, 7 SMPTE 240M, 8 YCgCo, 9 BT.2020 NCL, 10 BT.2020 CL
  (approximated by NCL: true CL needs the transfer function); 0 (RGB), 2 (unspecified) and absent
  mean BT.709. Other values raise ``ValueError``.
* ``_Range`` (current VapourSynth, ``vs.Range``, as ``core.resize`` reads it): 0 limited, 1 full. The
  deprecated ``_ColorRange`` (0 full, 1 limited) is read only when ``_Range`` is absent. Absent: limited for YUV, full
  for RGB and GRAY (zimg assumes limited for GRAY; full never clips full-range masks). Float formats are
  always full: Y / RGB in [0, 1], chroma in [-0.5, 0.5]. Integer limited: Y 16..235 and C 16..240
  scaled by 2^(bits-8) (YCgCo chroma uses the luma scale); full: Y = v / (2^bits - 1) and
  C = (v - 2^(bits-1)) / (2^bits - 1).
* ``_ChromaLocation``: 0 left (default), 1 center, 2 top_left, 3 top, 4 bottom_left, 5 bottom.
  Frames are treated as progressive (the filter refuses to generate frames from interlaced clips).

Chroma is upsampled with zimg's Catmull-Rom bicubic (``resize.Bicubic`` defaults b=0, c=0.5), with
zimg's tap positions, normalisation and mirrored borders, so ``to_rgb`` equals ``core.resize.Bicubic``
to float rounding. ``from_rgb`` downsamples chroma with zimg's bicubic downscaler (the same kernel
widened by the subsampling factor) by default, or (``chroma_down="inverse"``) with a compact
least-squares left inverse of the upsampler, which makes ``from_rgb(to_rgb(x)) == x`` for subsampled
formats too at the cost of more chroma ringing on edges the upsampler cannot produce.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import torch

if TYPE_CHECKING:
    import vapoursynth as vs

__all__ = [
    "BT709_LUMA",
    "ColorConverter",
    "PlaneFormat",
    "copy_to_frame",
    "host_tensor",
    "rgb_luma",
    "tagged_full_range",
]

ColorFamily = Literal["rgb", "yuv", "gray"]
ChromaDown = Literal["bicubic", "inverse"]
Planes = Sequence[np.ndarray | torch.Tensor]

# (Kr, Kb) per _Matrix; 10 (BT.2020 CL) is approximated by the NCL matrix.
_KR_KB: dict[int, tuple[float, float]] = {
    1: (0.2126, 0.0722),
    4: (0.30, 0.11),
    5: (0.299, 0.114),
    6: (0.299, 0.114),
    7: (0.212, 0.087),
    9: (0.2627, 0.0593),
    10: (0.2627, 0.0593),
}
_YCGCO = 8
_MATRIX_ALIASES = {0: 1, 2: 1}  # RGB / unspecified -> BT.709
# _ChromaLocation -> (horizontal, vertical) siting: -1 left / top, 0 centre, +1 bottom. The chroma sample
# then sits that many times (1 - 1/s) / 2 chroma pixels from the centred position (s: subsampling factor).
_CHROMA_LOC: dict[int, tuple[int, int]] = {0: (-1, 0), 1: (0, 0), 2: (-1, -1), 3: (0, -1), 4: (-1, 1), 5: (0, 1)}
BT709_LUMA = (0.2126, 0.0722)
_CUBIC_B, _CUBIC_C = 0.0, 0.5  # core.resize.Bicubic defaults (Catmull-Rom)
_INVERSE_TAPS = {1: 20, 2: 24}  # window (luma samples) of the least-squares inverse per log2 subsampling


@dataclass(frozen=True)
class PlaneFormat:
    """A constant VapourSynth video format, reduced to what the conversion needs."""

    color_family: ColorFamily
    is_float: bool
    bits: int  # 8..16 for integer, 16 or 32 for float
    subsampling_w: int = 0  # log2, YUV only
    subsampling_h: int = 0

    def __post_init__(self) -> None:
        if self.color_family not in ("rgb", "yuv", "gray"):
            raise ValueError(f"unsupported format {self}: colour family must be rgb, yuv or gray")
        if self.is_float and self.bits not in (16, 32):
            raise ValueError(f"unsupported format {self}: float samples must be 16 or 32 bit")
        if not self.is_float and not 8 <= self.bits <= 16:
            raise ValueError(f"unsupported format {self}: integer samples must be 8 to 16 bit")
        if self.color_family != "yuv" and (self.subsampling_w or self.subsampling_h):
            raise ValueError(f"unsupported format {self}: only YUV can be subsampled")
        if not (0 <= self.subsampling_w <= 2 and 0 <= self.subsampling_h <= 2):
            raise ValueError(f"unsupported format {self}: chroma subsampling above 4x is not supported")

    def __str__(self) -> str:
        kind = ("H" if self.bits == 16 else "S") if self.is_float else str(self.bits)
        if self.color_family == "gray":
            return f"GRAY{kind}"
        if self.color_family == "rgb":
            return f"RGB{kind}" if self.is_float else f"RGB{3 * self.bits}"
        sub = {(0, 0): "444", (1, 0): "422", (1, 1): "420", (2, 0): "411", (2, 2): "410", (0, 1): "440"}
        name = sub.get((self.subsampling_w, self.subsampling_h), f"ssw{self.subsampling_w}ssh{self.subsampling_h}")
        return f"YUV{name}P{kind}"

    @classmethod
    def from_vs(cls, fmt: vs.VideoFormat | None) -> PlaneFormat:
        """From a ``vs.VideoFormat``; ``ValueError`` (naming the format) for anything unsupported."""
        import vapoursynth as vs

        if fmt is None or fmt.color_family == vs.UNDEFINED:
            raise ValueError("unsupported format (variable / undefined): the clip needs a constant format")
        families: dict[Any, ColorFamily] = {vs.RGB: "rgb", vs.YUV: "yuv", vs.GRAY: "gray"}
        family = families.get(fmt.color_family)
        if family is None:
            raise ValueError(f"unsupported format {fmt.name}: colour family {fmt.color_family!r}")
        is_float = fmt.sample_type == vs.FLOAT
        bits = int(fmt.bits_per_sample)
        if is_float and bits not in (16, 32):
            raise ValueError(f"unsupported format {fmt.name}: {bits}-bit float samples")
        if not is_float and bits > 16:
            raise ValueError(f"unsupported format {fmt.name}: integer samples above 16 bits")
        if fmt.subsampling_w > 2 or fmt.subsampling_h > 2:
            raise ValueError(f"unsupported format {fmt.name}: chroma subsampling above 4x")
        return cls(family, is_float, bits, int(fmt.subsampling_w), int(fmt.subsampling_h))

    @property
    def num_planes(self) -> int:
        return 1 if self.color_family == "gray" else 3

    @property
    def numpy_dtype(self) -> np.dtype:
        if self.is_float:
            return np.dtype(np.float16 if self.bits == 16 else np.float32)
        return np.dtype(np.uint8 if self.bits == 8 else np.uint16)

    @property
    def torch_dtype(self) -> torch.dtype:
        """Storage dtype of the planes ``from_rgb`` returns. For 9-16 bit this is ``torch.uint16``; the
        arithmetic goes through int16 views, so only copies / views of uint16 tensors are needed on CUDA."""
        if self.is_float:
            return torch.float16 if self.bits == 16 else torch.float32
        return torch.uint8 if self.bits == 8 else torch.uint16

    def plane_shape(self, plane: int, width: int, height: int) -> tuple[int, int]:
        """(height, width) of plane ``plane``."""
        if plane == 0 or self.color_family != "yuv":
            return height, width
        return height >> self.subsampling_h, width >> self.subsampling_w


# ---------------------------------------------------------------------------------------------- resampling


def _cubic(x: np.ndarray, b: float = _CUBIC_B, c: float = _CUBIC_C) -> np.ndarray:
    x = np.abs(x)
    inner = ((12 - 9 * b - 6 * c) * x**3 + (-18 + 12 * b + 6 * c) * x**2 + (6 - 2 * b)) / 6
    outer = ((-b - 6 * c) * x**3 + (6 * b + 30 * c) * x**2 + (-12 * b - 48 * c) * x + (8 * b + 24 * c)) / 6
    return np.where(x < 1, inner, np.where(x < 2, outer, 0.0))


def _mirror(idx: np.ndarray, n: int) -> np.ndarray:
    """Half-sample symmetric extension (zimg's border rule), repeated for tiny images."""
    idx = np.mod(idx, 2 * n)
    return np.where(idx >= n, 2 * n - 1 - idx, idx)


def zimg_resample_matrix(src: int, dst: int, shift: float, support: int = 2) -> np.ndarray:
    """Dense (dst, src) float64 matrix of zimg's ``compute_filter`` for the Catmull-Rom bicubic:
    output ``i`` samples the input at ``(i + 0.5) * src / dst + shift`` (pixel-edge coordinates)."""
    scale = dst / src
    step = min(scale, 1.0)
    size = max(math.ceil(support / step) * 2, 1)
    pos = (np.arange(dst) + 0.5) / scale + shift
    start = pos - size / 2
    begin = np.sign(start) * np.floor(np.abs(start) + 0.5) + 0.5  # round half away from zero, as zimg
    xpos = begin[:, None] + np.arange(size)[None, :]
    w = _cubic((xpos - pos[:, None]) * step)
    w /= w.sum(axis=1, keepdims=True)
    idx = _mirror(np.floor(xpos).astype(np.int64), src)
    m = np.zeros((dst, src))
    np.add.at(m, (np.repeat(np.arange(dst), size), idx.ravel()), w.ravel())
    return m


def _inverse_matrix(up: np.ndarray, target: np.ndarray, s: int, offset: float, taps: int) -> np.ndarray:
    """Compact left inverse of the upsampler ``up`` (N, n): each row solves min ||d - target_row||
    subject to ``d @ up == e_i`` over a window of ``taps`` luma samples centred on chroma sample ``i``."""
    big, n = up.shape
    rows = np.arange(n)
    centre = s * (rows + 0.5 + offset) - 0.5  # luma index of each chroma sample
    start = np.floor(centre - (taps - 1) / 2 + 0.5).astype(np.int64)
    win = start[:, None] + np.arange(taps)[None, :]  # (n, taps)
    wvalid = (win >= 0) & (win < big)
    half = taps // (2 * s) + 3
    cols = rows[:, None] + np.arange(-half, half + 1)[None, :]  # (n, m)
    cvalid = (cols >= 0) & (cols < n)
    a = up[np.clip(win, 0, big - 1)[:, :, None], np.clip(cols, 0, n - 1)[:, None, :]]
    a *= wvalid[:, :, None] & cvalid[:, None, :]  # (n, taps, m)
    e = (cols == rows[:, None]).astype(np.float64)
    t = target[rows[:, None], np.clip(win, 0, big - 1)] * wvalid
    at = a.transpose(0, 2, 1)
    resid = np.einsum("nmk,nk->nm", at, t) - e
    d = t - np.einsum("nkm,nm->nk", np.linalg.pinv(at), resid)
    out = np.zeros((n, big))
    np.add.at(out, (np.repeat(rows, taps), np.clip(win, 0, big - 1).ravel()), (d * wvalid).ravel())
    return out


class _Resampler1D:
    """Applies a banded (dst, src) matrix along one axis: a polyphase FIR (sums of shifted, strided slices;
    elementwise ops only, no padding copies) on the regular interior, and small dense products for the
    border rows (mirrored taps, per-row designs)."""

    def __init__(self, m: np.ndarray, up: int, down: int, device: torch.device) -> None:
        dst, src = m.shape
        self.up, self.down, self.dst, self.src = up, down, dst, src
        nq = dst // up
        mid = nq // 2
        rows = up * mid + np.arange(up)
        nz = np.nonzero(np.abs(m[rows]).max(axis=0) > 0)[0]
        c0, c1 = int(nz.min()) - down * mid, int(nz.max()) - down * mid
        width = c1 - c0 + 1
        kernel = m[rows][:, down * mid + c0 : down * mid + c1 + 1]  # (up, width)
        # Output group q (rows up*q .. up*q+up-1) is regular when its window lies inside and matches the kernel.
        q = np.arange(nq)
        first = down * q + c0
        inside = (first >= 0) & (first + width <= src)
        conv = np.zeros_like(m)
        cols = first[inside, None] + np.arange(width)[None, :]
        for p in range(up):
            conv[np.repeat(up * q[inside] + p, width), cols.ravel()] = np.tile(kernel[p], int(inside.sum()))
        bad_rows = np.abs(m - conv).max(axis=1) > 1e-9
        irregular = np.nonzero(~inside | bad_rows.reshape(nq, up).any(axis=1))[0]
        below, above = irregular[irregular < mid], irregular[irregular > mid]
        self.q_lo = int(below.max()) + 1 if below.size else 0
        self.q_hi = int(above.min()) if above.size else nq
        self.first = down * self.q_lo + c0
        self.dense: torch.Tensor | None = None
        if self.q_hi - self.q_lo < 2 or mid in irregular:
            self.dense = torch.tensor(m, dtype=torch.float32, device=device)
            return
        r_lo, r_hi = up * self.q_lo, up * self.q_hi
        self.l_lo = int(np.nonzero(np.abs(m[:r_lo]).max(axis=0) > 0)[0].max()) + 1 if r_lo else 0
        self.l_hi = src - int(np.nonzero(np.abs(m[r_hi:]).max(axis=0) > 0)[0].min()) if r_hi < dst else 0
        self.m_lo = torch.tensor(m[:r_lo, : self.l_lo], dtype=torch.float32, device=device)
        self.m_hi = torch.tensor(m[r_hi:, src - self.l_hi :], dtype=torch.float32, device=device)
        self.nq = nq
        self.taps = [[float(v) for v in row] for row in kernel.astype(np.float32)]

    def _interior(self, x: torch.Tensor, out: torch.Tensor, dim: int) -> None:
        """Regular groups q_lo..q_hi-1: phase p of ``out`` (phase axis after ``dim``) = sum_k w[p, k] x[...]."""
        n = self.q_hi - self.q_lo
        index: list[slice] = [slice(None)] * x.dim()
        for p in range(self.up):
            target = out.select(dim + 1, p).narrow(dim, self.q_lo, n)
            started = False
            for k, wk in enumerate(self.taps[p]):
                if wk == 0.0:
                    continue
                start = self.first + k
                index[dim] = slice(start, start + self.down * (n - 1) + 1, self.down)
                piece = x[tuple(index)]
                if started:
                    target.add_(piece, alpha=wk)
                elif wk == 1.0:
                    target.copy_(piece)
                else:
                    torch.mul(piece, wk, out=target)
                started = True

    def along_w(self, x: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
        """(C, H, src) -> (C, H, dst), into the contiguous ``out`` when given."""
        c, h, _ = x.shape
        if out is None:
            out = torch.empty((c, h, self.dst), dtype=x.dtype, device=x.device)
        if self.dense is not None:
            return torch.sum(x[:, :, None, :] * self.dense, dim=-1, out=out)
        self._interior(x, out.view(c, h, self.nq, self.up), 2)
        if self.q_lo:
            torch.sum(x[:, :, None, : self.l_lo] * self.m_lo, dim=-1, out=out[:, :, : self.up * self.q_lo])
        if self.q_hi < self.nq:
            hi = x[:, :, None, self.src - self.l_hi :] * self.m_hi
            torch.sum(hi, dim=-1, out=out[:, :, self.up * self.q_hi :])
        return out

    def along_h(self, x: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
        """(C, src, W) -> (C, dst, W), into the contiguous ``out`` when given."""
        c, _, w = x.shape
        if out is None:
            out = torch.empty((c, self.dst, w), dtype=x.dtype, device=x.device)
        if self.dense is not None:
            return torch.sum(self.dense[:, :, None] * x[:, None], dim=2, out=out)
        self._interior(x, out.view(c, self.nq, self.up, w), 1)
        if self.q_lo:
            torch.sum(self.m_lo[:, :, None] * x[:, None, : self.l_lo], dim=2, out=out[:, : self.up * self.q_lo])
        if self.q_hi < self.nq:
            hi = self.m_hi[:, :, None] * x[:, None, self.src - self.l_hi :]
            torch.sum(hi, dim=2, out=out[:, self.up * self.q_hi :])
        return out


def _chroma_offsets(loc: int, ssw: int, ssh: int) -> tuple[float, float]:
    """Offset of the chroma sample from the centred position, in chroma pixels (zimg's convention)."""
    dw, dh = _CHROMA_LOC[loc]
    return dw * (0.5 - 0.5 / (1 << ssw)), dh * (0.5 - 0.5 / (1 << ssh))


# ---------------------------------------------------------------------------------------------- colour


def tagged_full_range(props: Mapping[str, Any]) -> bool | None:
    """Full range as the frame's props say: ``_Range`` (1 full, 0 limited), else the deprecated
    ``_ColorRange`` (0 full, 1 limited); None when neither is set. ValueError for a ``_Range`` outside 0/1."""
    value = _int_prop(props, "_Range")
    if value is not None:
        if value not in (0, 1):
            raise ValueError(f"unsupported _Range={value} (expected 0 limited or 1 full)")
        return value == 1
    legacy = _int_prop(props, "_ColorRange")
    return None if legacy is None else legacy == 0


def _int_prop(props: Mapping[str, Any], key: str) -> int | None:
    value = props.get(key)
    return None if value is None else int(value)


def _rgb_to_yuv(matrix: int) -> np.ndarray:
    """3x3 float64 RGB -> (Y, Cb, Cr) (or (Y, Cg, Co)) on normalised values."""
    if matrix == _YCGCO:
        return np.array([[0.25, 0.5, 0.25], [-0.25, 0.5, -0.25], [0.5, 0.0, -0.5]])
    kr, kb = _KR_KB[matrix]
    kg = 1.0 - kr - kb
    return np.array(
        [
            [kr, kg, kb],
            [-kr / (2 * (1 - kb)), -kg / (2 * (1 - kb)), 0.5],
            [0.5, -kg / (2 * (1 - kr)), -kb / (2 * (1 - kr))],
        ]
    )


@dataclass(frozen=True)
class _Affine:
    """``out[i] = sum_j a[i][j] x[j] + b[i]`` over planes, in elementwise ops: no matmul, so TF32 /
    reduced-precision matmul settings cannot touch it."""

    a: tuple[tuple[float, ...], ...]
    b: tuple[float, ...]

    @classmethod
    def of(cls, a: np.ndarray, b: np.ndarray) -> _Affine:
        a = np.where(np.abs(a) < 1e-12 * np.abs(a).max(), 0.0, a)
        return cls(tuple(tuple(float(v) for v in row) for row in a), tuple(float(v) for v in b))

    def apply(self, x: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        for i in range(3):
            o = out[i]
            o.fill_(self.b[i])
            for j in range(3):
                if self.a[i][j] != 0.0:
                    o.add_(x[j], alpha=self.a[i][j])
        return out


class ColorConverter:
    """Converts frames of one ``PlaneFormat`` and size to / from RGB float32 on ``device``.

    ``chroma_down`` picks the downsampler ``from_rgb`` uses for subsampled chroma: ``"bicubic"`` (default)
    is zimg's, i.e. what ``core.resize.Bicubic`` would write (step overshoot ~3%); ``"inverse"`` is an exact
    left inverse of the upsampler, so unchanged frames come back bit-exact (step overshoot ~13%).
    Thread-safe (per-call state only; caches are filled idempotently). Matrices and resamplers are
    cached per (matrix, range) and per chroma location.
    """

    def __init__(
        self,
        fmt: PlaneFormat,
        width: int,
        height: int,
        device: torch.device | str = "cpu",
        *,
        chroma_down: ChromaDown = "bicubic",
        pinned: bool = True,
    ) -> None:
        if width <= 0 or height <= 0:
            raise ValueError(f"invalid frame size {width}x{height}")
        if width % (1 << fmt.subsampling_w) or height % (1 << fmt.subsampling_h):
            raise ValueError(f"{fmt}: frame size {width}x{height} is not divisible by the chroma subsampling")
        if chroma_down not in ("bicubic", "inverse"):
            raise ValueError(f'chroma_down must be "bicubic" or "inverse", got {chroma_down!r}')
        self.fmt, self.width, self.height = fmt, width, height
        self.device = torch.device(device)
        self.chroma_down: ChromaDown = chroma_down
        self._subsampled = fmt.subsampling_w > 0 or fmt.subsampling_h > 0
        self._affine: dict[tuple[int, bool], tuple[_Affine, _Affine]] = {}
        self._resamplers: dict[tuple[int, str], tuple[_Resampler1D | None, _Resampler1D | None]] = {}
        self._direct_uint16 = self.device.type == "cpu"  # CUDA: go through int16 views (standard dtypes only)
        # CUDA uploads: stage in pinned memory (parallel host copy, then asynchronous DMA), or copy
        # straight from the frame's pageable memory (the driver stages it). Benchmarks compare the two.
        self.pinned = pinned

    # -- props ----------------------------------------------------------------------------------------

    def _full_range(self, props: Mapping[str, Any]) -> bool:
        if self.fmt.is_float:
            return True
        full = tagged_full_range(props)
        return full if full is not None else self.fmt.color_family != "yuv"

    def _matrix(self, props: Mapping[str, Any]) -> int:
        value = _int_prop(props, "_Matrix")
        matrix = _MATRIX_ALIASES.get(value, value) if value is not None else 1
        if matrix not in _KR_KB and matrix != _YCGCO:
            raise ValueError(f"unsupported _Matrix={value} (supported: 0-2, 4-10)")
        return matrix

    def _chroma_location(self, props: Mapping[str, Any]) -> int:
        value = _int_prop(props, "_ChromaLocation")
        loc = 0 if value is None else value
        if loc not in _CHROMA_LOC:
            raise ValueError(f"unsupported _ChromaLocation={value} (expected 0-5)")
        return loc

    def _quant(self, full: bool, chroma: bool, ycgco: bool = False) -> tuple[float, float]:
        """(offset, range) mapping a normalised value to a code value (zimg's integer_offset / range)."""
        fmt = self.fmt
        if fmt.is_float:
            return 0.0, 1.0
        k = 1 << (fmt.bits - 8)
        offset = float(1 << (fmt.bits - 1)) if chroma else (0.0 if full else 16.0 * k)
        if full:
            return offset, float((1 << fmt.bits) - 1)
        return offset, float((224 if chroma and not ycgco else 219) * k)

    def _affine_for(self, props: Mapping[str, Any]) -> tuple[_Affine, _Affine]:
        """YUV only: (to RGB, from RGB) affine maps between code values and normalised RGB."""
        full = self._full_range(props)
        matrix = self._matrix(props)
        key = (matrix, full)
        cached = self._affine.get(key)
        if cached is not None:
            return cached
        ycgco = matrix == _YCGCO
        quant = [self._quant(full, False), self._quant(full, True, ycgco), self._quant(full, True, ycgco)]
        off = np.array([q[0] for q in quant])
        rng = np.array([q[1] for q in quant])
        to_yuv = _rgb_to_yuv(matrix)
        fwd = np.linalg.inv(to_yuv) / rng[None, :]
        inv = to_yuv * rng[:, None]
        result = (_Affine.of(fwd, -(fwd @ off)), _Affine.of(inv, off))
        self._affine[key] = result
        return result

    def _resampler(self, loc: int, direction: str) -> tuple[_Resampler1D | None, _Resampler1D | None]:
        """(horizontal, vertical) resamplers for chroma ``direction`` "up" (chroma -> luma grid) or "down"."""
        key = (loc, direction)
        cached = self._resamplers.get(key)
        if cached is not None:
            return cached
        fmt = self.fmt
        off_w, off_h = _chroma_offsets(loc, fmt.subsampling_w, fmt.subsampling_h)
        pair: list[_Resampler1D | None] = []
        for ss, big, off in ((fmt.subsampling_w, self.width, off_w), (fmt.subsampling_h, self.height, off_h)):
            if ss == 0:
                pair.append(None)
                continue
            s, n = 1 << ss, big >> ss
            up = zimg_resample_matrix(n, big, -off)
            if direction == "up":
                pair.append(_Resampler1D(up, s, 1, self.device))
                continue
            down = zimg_resample_matrix(big, n, s * off)
            if self.chroma_down == "inverse":
                down = _inverse_matrix(up, down, s, off, _INVERSE_TAPS[ss])
            pair.append(_Resampler1D(down, 1, s, self.device))
        result = (pair[0], pair[1])
        self._resamplers[key] = result
        return result

    # -- loading / storing ----------------------------------------------------------------------------

    def _load(self, plane: np.ndarray | torch.Tensor, out: torch.Tensor) -> None:
        """Copy one plane (any strides, read-only is fine) into the float32 tensor ``out`` on the device."""
        if isinstance(plane, torch.Tensor):
            t = plane.view(torch.int16) if plane.dtype == torch.uint16 else plane
            _copy_codes(out, t.to(self.device, non_blocking=True))
            return
        arr = np.asarray(plane)
        if arr.shape != tuple(out.shape):
            raise ValueError(f"{self.fmt}: plane of shape {arr.shape}, expected {tuple(out.shape)}")
        if self.device.type == "cpu":
            np.copyto(out.numpy(), arr, casting="unsafe")  # one pass: strided read + convert
        elif self.pinned:  # one copy into pinned memory, DMA, convert on the device
            _copy_codes(out, _stage(arr, self.fmt, pin=True).to(self.device, non_blocking=True))
        else:
            _copy_codes(out, _stage(arr, self.fmt, pin=False, copy=False).to(self.device))

    def _load_planes(self, planes: Planes, first: int, count: int, shape: tuple[int, int]) -> torch.Tensor:
        out = torch.empty((count, *shape), dtype=torch.float32, device=self.device)
        for i in range(count):
            self._load(planes[first + i], out[i])
        return out

    def _store(self, x: torch.Tensor) -> torch.Tensor:
        """Float codes (or normalised floats) -> native dtype, contiguous; integers rounded and clamped."""
        fmt = self.fmt
        if fmt.is_float:
            return x.to(fmt.torch_dtype).contiguous() if fmt.bits == 16 else x.contiguous()
        x = x.round().clamp_(0, (1 << fmt.bits) - 1)
        if fmt.bits == 8:
            return x.to(torch.uint8).contiguous()
        if self._direct_uint16:
            return x.to(torch.uint16).contiguous()
        return torch.where(x >= 32768, x - 65536, x).to(torch.int16).contiguous().view(torch.uint16)

    def _check_planes(self, planes: Planes) -> None:
        if len(planes) < self.fmt.num_planes:
            raise ValueError(f"{self.fmt}: expected {self.fmt.num_planes} planes, got {len(planes)}")

    # -- public API -----------------------------------------------------------------------------------

    def to_rgb(self, planes: Planes, props: Mapping[str, Any]) -> torch.Tensor:
        """(1, 3, H, W) float32 on the device; RGB in [0, 1] nominal (not clamped)."""
        self._check_planes(planes)
        fmt, h, w = self.fmt, self.height, self.width
        if fmt.color_family != "yuv":
            x = self._load_planes(planes, 0, fmt.num_planes, (h, w))
            if not fmt.is_float:
                off, rng = self._quant(self._full_range(props), chroma=False)
                x.sub_(off).div_(rng)
            return x.expand(3, h, w).contiguous()[None] if fmt.color_family == "gray" else x[None]
        fwd, _ = self._affine_for(props)
        if not self._subsampled:
            x = self._load_planes(planes, 0, 3, (h, w))
        else:
            x = torch.empty((3, h, w), dtype=torch.float32, device=self.device)
            self._load(planes[0], x[0])
            chroma = self._load_planes(planes, 1, 2, fmt.plane_shape(1, w, h))
            horiz, vert = self._resampler(self._chroma_location(props), "up")
            if vert is None and horiz is not None:
                horiz.along_w(chroma, out=x[1:])
            elif vert is not None:
                vert.along_h(chroma if horiz is None else horiz.along_w(chroma), out=x[1:])
        rgb = torch.empty((1, 3, h, w), dtype=torch.float32, device=self.device)
        fwd.apply(x, rgb[0])
        return rgb

    def from_rgb(self, rgb: torch.Tensor, props: Mapping[str, Any]) -> list[torch.Tensor]:
        """Planes in the native dtype on the device, each (h_p, w_p) and contiguous (``.cpu().numpy()``
        gives what to copy into a VapourSynth frame). Integers are rounded and clamped to [0, 2^bits-1]."""
        fmt, h, w = self.fmt, self.height, self.width
        x = rgb.to(self.device, torch.float32).reshape(3, h, w)
        if fmt.color_family != "yuv":
            if fmt.color_family == "gray":
                kr, kb = BT709_LUMA
                g = x[1]  # g + Kr (r - g) + Kb (b - g): exact for gray input (r == g == b)
                x = (g + kr * (x[0] - g) + kb * (x[2] - g))[None]
            if not fmt.is_float:
                off, rng = self._quant(self._full_range(props), chroma=False)
                x = x * rng + off
            elif x.data_ptr() == rgb.data_ptr():
                x = x.clone()  # never hand out views of the caller's tensor
            return [self._store(p) for p in x]
        _, inv = self._affine_for(props)
        yuv = inv.apply(x, torch.empty((3, h, w), dtype=torch.float32, device=self.device))
        if not self._subsampled:
            return [self._store(yuv[i]) for i in range(3)]
        chroma = yuv[1:]
        horiz, vert = self._resampler(self._chroma_location(props), "down")
        if vert is not None:  # vertical first: the (slower) horizontal pass then sees fewer rows
            chroma = vert.along_h(chroma)
        if horiz is not None:
            chroma = horiz.along_w(chroma)
        return [self._store(yuv[0]), self._store(chroma[0]), self._store(chroma[1])]

    def luma(self, planes: Planes, props: Mapping[str, Any]) -> torch.Tensor:
        """(1, 1, H, W) float32 luma in [0, 1] nominal: the Y plane for YUV / GRAY, BT.709 weights for RGB."""
        self._check_planes(planes)
        if self.fmt.color_family == "rgb":
            return rgb_luma(self.to_rgb(planes, props))
        y = self._load_planes(planes, 0, 1, (self.height, self.width))
        if not self.fmt.is_float:
            off, rng = self._quant(self._full_range(props), chroma=False)
            y.sub_(off).div_(rng)
        return y[None]


def rgb_luma(rgb: torch.Tensor) -> torch.Tensor:
    """(1, 3, H, W) RGB -> (1, 1, H, W) luma with BT.709 weights."""
    kr, kb = BT709_LUMA
    return kr * rgb[:, 0:1] + (1 - kr - kb) * rgb[:, 1:2] + kb * rgb[:, 2:3]


def host_tensor(arr: np.ndarray) -> torch.Tensor:
    """Zero-copy CPU tensor over ``arr`` (also read-only frame memory; uint16 as int16 bits)."""
    if arr.dtype == np.uint16:
        arr = arr.view(np.int16)
    with warnings.catch_warnings():  # read-only source frames: the tensor is only ever read
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        return torch.from_numpy(arr)


def copy_to_frame(dst: np.ndarray, src: torch.Tensor) -> None:
    """Write ``src`` (host or CUDA, the plane's dtype) into the frame plane ``dst`` (any strides).

    torch's copy runs on several threads for large planes (np.copyto uses one), and from CUDA it
    copies straight into the frame's memory.
    """
    host_tensor(dst).copy_(src.view(torch.int16) if src.dtype == torch.uint16 else src)


def _stage(arr: np.ndarray, fmt: PlaneFormat, pin: bool, copy: bool = True) -> torch.Tensor:
    """Host copy of ``arr`` in the format's storage dtype (9-16 bit as int16 bits), pinned if ``pin``.

    ``copy=False`` returns a zero-copy view when the dtypes already agree.
    """
    dtype = torch.int16 if fmt.torch_dtype == torch.uint16 else fmt.torch_dtype
    expected = np.dtype(np.uint16) if dtype == torch.int16 else fmt.numpy_dtype
    same = arr.dtype == expected
    if same and not copy:
        return host_tensor(arr)
    staged = torch.empty(arr.shape, dtype=dtype, pin_memory=pin)
    if same:
        return staged.copy_(host_tensor(arr))  # parallel for large planes
    view = staged.numpy()
    np.copyto(view.view(np.uint16) if dtype == torch.int16 else view, arr, casting="unsafe")
    return staged


def _copy_codes(out: torch.Tensor, t: torch.Tensor) -> None:
    """``out`` (float32) = ``t``; int16 tensors carry uint16 bits and are unwrapped."""
    out.copy_(t)
    if t.dtype == torch.int16:
        out.add_((out < 0).to(out.dtype), alpha=65536.0)
