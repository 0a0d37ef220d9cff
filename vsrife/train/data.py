"""Training data: frame sequences, (I0, It, I1, t) windows, a deterministic split and step-keyed sampling.

Sources (``kind:path`` strings in the configuration):

* ``vimeo-triplet:ROOT`` / ``vimeo-septuplet:ROOT`` -- Vimeo90K layouts (``tri_trainlist.txt`` /
  ``sep_trainlist.txt``, ``sequences/00001/0001/im1.png`` ...). The curated lists are used as they are
  (no duplicate/cut check; a listed sequence with missing frames is refused when the source is loaded);
  the train list is split into train and validation by hashing the id.
* ``frames:DIR`` -- a folder of frames, or a folder of such folders, both in natural order (numbers by
  value: ``2.png`` before ``10.png``).
* ``video:FILE`` -- a video decoded with ffmpeg (:func:`vsrife.media.read_frames`).
* ``sample:NAME`` -- one of the sample videos of :mod:`vsrife.samples`.

* ``synthetic:N`` -- N sequences of a panning random texture (offline smoke tests and GPU checks).

Videos are decoded whole into memory; ``video_scale`` (or a ``@0.5`` suffix on one source) downscales them.

A window of k consecutive frames gives I0 = first, I1 = last, It = an inner frame j and t = j / (k - 1).
For generic sources, windows containing a duplicate (PSNR > 48 dB) or a cut (< 16 dB) between any two
neighbouring frames are dropped, and the split is made by segments of ``val_segment`` frames: the
segments with the smallest hashes over all sequences together are held out until they hold ``val_fraction``
of the windows, so no frame is shared between training and validation windows and short clips are not
held out wholesale.
"""

from __future__ import annotations

import hashlib
import math
import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from vsrife.quality import CUT_DB, DUPLICATE_DB
from vsrife.train.augment import Augment, augment_window, center_crop
from vsrife.train.config import ConfigError

__all__ = [
    "ArraySequence",
    "FileSequence",
    "FrameSequence",
    "StepSampler",
    "Window",
    "WindowDataset",
    "build_splits",
    "load_source",
    "make_windows",
    "natural_key",
    "pair_psnr",
    "read_image",
    "sequence_identity",
    "split_of",
    "synthetic_sequence",
    "vimeo_sequences",
]

SOURCE_KINDS = ("vimeo-triplet", "vimeo-septuplet", "frames", "video", "sample", "synthetic")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
Split = Literal["dataset", "sequence"]
"""How held-out segments are chosen: ``dataset`` (across all sequences) or ``sequence`` (per sequence,
at least one each: checkpoints written before the dataset-wide split resume with it)."""


def read_image(path: str | Path) -> np.ndarray:
    """uint8 RGB (H, W, 3) of an image file."""
    import cv2

    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        raise OSError(f"cannot read image {path}")
    return np.ascontiguousarray(img[:, :, ::-1])


class FrameSequence(Protocol):
    """Consecutive frames of one shot or clip.

    ``curated``: a benchmark's own list (no cut checks, split whole by name); ``cut_free``: no duplicates
    or cuts by construction (no cut checks, split by segments like footage); ``source``: the data source
    (``kind:path``) it came from, for messages.
    """

    name: str
    curated: bool
    cut_free: bool
    source: str

    def __len__(self) -> int: ...

    def frame(self, index: int) -> np.ndarray: ...

    @property
    def size(self) -> tuple[int, int]: ...


class ArraySequence:
    """Frames held in memory (a decoded video)."""

    def __init__(self, name: str, frames: np.ndarray, curated: bool = False, cut_free: bool = False) -> None:
        if frames.ndim != 4 or frames.shape[3] != 3 or frames.dtype != np.uint8:
            raise ValueError(f"{name}: expected uint8 frames (N, H, W, 3), got {frames.dtype} {frames.shape}")
        self.name, self.frames, self.curated, self.cut_free = name, frames, curated, cut_free or curated
        self.source = name

    def __len__(self) -> int:
        return len(self.frames)

    def frame(self, index: int) -> np.ndarray:
        return self.frames[index]

    @property
    def size(self) -> tuple[int, int]:
        return int(self.frames.shape[1]), int(self.frames.shape[2])


class FileSequence:
    """Frames read from image files on demand."""

    def __init__(self, name: str, paths: Sequence[Path], curated: bool = False, size: tuple[int, int] | None = None):
        self.name, self.paths, self.curated, self.cut_free = name, list(paths), curated, curated
        self.source = name
        self._size = size

    def __len__(self) -> int:
        return len(self.paths)

    def frame(self, index: int) -> np.ndarray:
        path = self.paths[index]
        try:
            img = read_image(path)
        except OSError as exc:
            raise ConfigError(f"data: {exc}") from None
        size = (img.shape[0], img.shape[1])
        if self._size is None:
            self._size = size
        elif size != self._size:  # crops and frame differences need one size per sequence
            raise ConfigError(
                f"data: {path} is {size[1]}x{size[0]}, but {self.name} has {self._size[1]}x{self._size[0]} frames; "
                "the frames of one sequence must share one size"
            )
        return img

    @property
    def size(self) -> tuple[int, int]:
        if self._size is None:
            self.frame(0)
        assert self._size is not None
        return self._size


# ---------------------------------------------------------------------------- sources
def vimeo_sequences(root: str | Path, kind: str = "triplet", split: str = "train") -> list[FileSequence]:
    """Sequences of a Vimeo90K triplet/septuplet folder for the ``train`` or ``test`` list."""
    root = Path(root)
    prefix, count = {"triplet": ("tri", 3), "septuplet": ("sep", 7)}[kind]
    list_file = root / f"{prefix}_{split}list.txt"
    if not list_file.is_file():
        raise ConfigError(f"data: {root} is not a Vimeo90K {kind} folder ({list_file.name} is missing)")
    seq_root = root / "sequences"
    if not seq_root.is_dir() and (root / "target").is_dir():
        seq_root = root / "target"  # the official vimeo_interp_test layout
    ids = [line.strip() for line in list_file.read_text().splitlines() if line.strip()]
    sequences = [
        FileSequence(f"vimeo/{seq_id}", [seq_root / seq_id / f"im{i}.png" for i in range(1, count + 1)], curated=True)
        for seq_id in ids
    ]
    _check_listed_frames(sequences, list_file)
    if sequences:  # all Vimeo90K frames share one size (448x256): read it once
        size = sequences[0].size
        for s in sequences:
            s._size = size
    return sequences


def _check_listed_frames(sequences: Sequence[FileSequence], list_file: Path) -> None:
    """Refuse a curated list whose sequences lack frames, naming the first missing files.

    Found here, not when training samples the sequence (mid-run, and again at every resume from before
    it). One directory listing per sequence, so it stays fast for Vimeo90K's 64,612 septuplets.
    """
    shown: list[Path] = []
    incomplete = lost_total = 0
    for seq in sequences:
        try:
            present = set(os.listdir(seq.paths[0].parent))
        except OSError:  # no such folder (or not readable): every frame is missing
            present = set()
        lost = [p for p in seq.paths if p.name not in present]
        incomplete += bool(lost)
        lost_total += len(lost)
        shown += lost[: max(0, 3 - len(shown))]
    if incomplete:
        more = f" and {lost_total - len(shown)} more" if lost_total > len(shown) else ""
        raise ConfigError(
            f"data: {incomplete} of the {len(sequences)} sequences listed in {list_file} lack frames (missing: "
            f"{', '.join(map(str, shown))}{more}); restore them or remove their lines from the list"
        )


def natural_key(path: Path) -> tuple[tuple[str | int, ...], str]:
    """Sort key of a file name with its numbers by value: ``2.png`` before ``10.png`` (then by the name)."""
    parts = re.split(r"(\d+)", path.name)
    return tuple(int(p) if i % 2 else p for i, p in enumerate(parts)), path.name


def _frame_folder(path: Path) -> list[FileSequence]:
    images = sorted((p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()), key=natural_key)
    if images:
        return [FileSequence(f"frames/{path.name}", images)]
    subdirs = sorted((p for p in path.iterdir() if p.is_dir()), key=natural_key)
    out = [s for d in subdirs for s in _frame_folder(d)]
    if not out:
        raise ConfigError(f"data: {path} holds no images ({', '.join(IMAGE_SUFFIXES)}) nor folders of them")
    return out


def _resize(frames: np.ndarray, scale: float) -> np.ndarray:
    if scale == 1.0:
        return frames
    import cv2

    h, w = frames.shape[1:3]
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return np.stack([cv2.resize(f, size, interpolation=cv2.INTER_AREA) for f in frames])


def _scale_suffix(target: str, default: float) -> tuple[str, float]:
    """``clip.mp4@0.5`` -> (``clip.mp4``, 0.5): a per-source downscale factor in (0, 1]."""
    head, at, tail = target.rpartition("@")
    if not at:
        return target, default
    try:
        scale = float(tail)
    except ValueError:
        return target, default
    if not 0.0 < scale <= 1.0:
        raise ConfigError(f"data: scale suffix @{tail} of {target!r} must be in (0, 1]")
    return head, scale


def load_source(spec: str, video_scale: float = 1.0, max_frames: int = 0) -> list[FrameSequence]:
    """Sequences of one ``kind:path`` data source (see the module docstring); each knows ``spec`` as its source."""
    sequences = _load_source(spec, video_scale, max_frames)
    for seq in sequences:
        seq.source = spec
    return sequences


def _load_source(spec: str, video_scale: float, max_frames: int) -> list[FrameSequence]:
    kind, sep, target = spec.partition(":")
    if not sep or not target:
        raise ConfigError(f"data: expected KIND:PATH ({', '.join(SOURCE_KINDS)}), got {spec!r}")
    if kind in ("vimeo-triplet", "vimeo-septuplet"):
        return list(vimeo_sequences(target, kind.split("-")[1], "train"))
    if kind == "frames":
        path = Path(target).expanduser()
        if not path.is_dir():
            raise ConfigError(f"data: frame folder {path} does not exist")
        return list(_frame_folder(path))
    if kind in ("video", "sample"):
        from vsrife.media import read_frames

        target, scale = _scale_suffix(target, video_scale)

        if kind == "sample":
            from vsrife.samples import sample_path

            try:
                path = sample_path(target)
            except KeyError as exc:
                raise ConfigError(f"data: {exc.args[0]}") from exc
        else:
            path = Path(target).expanduser()
            if not path.is_file():
                raise ConfigError(f"data: video {path} does not exist")
        try:
            frames = read_frames(path, 0, max_frames or None)
        except RuntimeError as exc:  # ffprobe / ffmpeg cannot decode it
            raise ConfigError(f"data: {exc}") from None
        return [ArraySequence(f"{kind}/{Path(path).stem}", _resize(frames, scale))]
    if kind == "synthetic":
        try:
            count = int(target)
        except ValueError as exc:
            raise ConfigError(f"data: synthetic:N needs a number of sequences, got {target!r}") from exc
        return [synthetic_sequence(i) for i in range(count)]
    raise ConfigError(f"data: unknown source kind {kind!r} in {spec!r} (expected {', '.join(SOURCE_KINDS)})")


def synthetic_sequence(seed: int, frames: int = 48, size: tuple[int, int] = (288, 448)) -> ArraySequence:
    """Smooth random texture panning at a constant random velocity (offline smoke tests, GPU checks)."""
    rng = np.random.default_rng(seed)
    h, w = size
    vy, vx = rng.uniform(-4, 4, 2)
    pad = int(np.ceil(max(abs(vy), abs(vx)) * frames)) + 2
    base = rng.random(((h + 2 * pad) // 8 + 2, (w + 2 * pad) // 8 + 2, 3)).astype(np.float32)
    import cv2

    big = cv2.resize(base, ((w + 2 * pad) + 16, (h + 2 * pad) + 16), interpolation=cv2.INTER_CUBIC)
    out = np.empty((frames, h, w, 3), np.uint8)
    for i in range(frames):
        m = np.array([[1, 0, -(pad + vx * i)], [0, 1, -(pad + vy * i)]], np.float32)
        out[i] = np.clip(cv2.warpAffine(big, m, (w, h), flags=cv2.INTER_LINEAR) * 255, 0, 255).astype(np.uint8)
    # fast pans fall under the 16 dB "cut" bound between neighbours; they are one shot by construction
    return ArraySequence(f"synthetic/{seed}", out, cut_free=True)


# ---------------------------------------------------------------------------- windows
@dataclass(frozen=True)
class Window:
    """k consecutive frames of sequence ``seq`` from ``start``; ``inner`` fixes It (None: random)."""

    seq: int
    start: int
    length: int
    inner: int | None = None

    def t(self, inner: int) -> float:
        return inner / (self.length - 1)


def pair_psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR (dB) between two uint8 frames."""
    diff = a.astype(np.float32) - b.astype(np.float32)
    mse = float(np.mean(diff * diff)) / (255.0 * 255.0)
    return math.inf if mse == 0 else 10.0 * math.log10(1.0 / mse)


def _bad_pairs(seq: FrameSequence) -> np.ndarray:
    """bad[i]: frames i and i+1 are a duplicate or a cut (never for curated or cut-free sequences)."""
    n = len(seq)
    bad = np.zeros(max(n - 1, 0), dtype=bool)
    if seq.cut_free:
        return bad
    prev = seq.frame(0)
    for i in range(n - 1):
        cur = seq.frame(i + 1)
        p = pair_psnr(prev, cur)
        bad[i] = p > DUPLICATE_DB or p < CUT_DB
        prev = cur
    return bad


def _unit_hash(text: str) -> float:
    return int.from_bytes(hashlib.sha1(text.encode()).digest()[:8], "big") / 2.0**64


def split_of(name: str, segment: int, n_segments: int, val_fraction: float) -> bool:
    """Whether segment ``segment`` of sequence ``name`` is validation in the per-sequence (``sequence``) split.

    The ``round(val_fraction * n_segments)`` segments (at least one when ``val_fraction`` > 0 and the
    sequence has two or more) with the smallest hash of ``name#segment`` are validation. Only runs
    checkpointed before the dataset-wide split resume with it: it holds out a whole segment of every
    sequence, far more than ``val_fraction`` of short clips and shots.
    """
    if val_fraction <= 0 or n_segments < 2:
        return False
    count = min(n_segments - 1, max(1, round(val_fraction * n_segments)))
    scores = [_unit_hash(f"{name}#{i}") for i in range(n_segments)]
    rank = sorted(range(n_segments), key=scores.__getitem__)
    return segment in rank[:count]


def _held_out_segments(
    sequences: Sequence[FrameSequence], windows_per_segment: dict[tuple[int, int], int], val_fraction: float
) -> set[tuple[int, int]]:
    """The (sequence, segment) pairs held out: by ascending hash of ``name#segment`` over all sequences, a
    segment is taken while that brings the held-out windows closer to ``val_fraction`` of all of them."""
    if val_fraction <= 0:
        return set()
    target = val_fraction * sum(windows_per_segment.values())
    held, chosen = 0, set()
    for key in sorted(windows_per_segment, key=lambda k: (_unit_hash(f"{sequences[k[0]].name}#{k[1]}"), k)):
        count = windows_per_segment[key]
        if count and held + count / 2 <= target:
            held += count
            chosen.add(key)
    return chosen


def make_windows(
    sequences: Sequence[FrameSequence],
    lengths: Sequence[int],
    val_fraction: float = 0.1,
    segment: int = 16,
    skip_bad: bool = True,
    split: Split = "dataset",
) -> tuple[list[Window], list[Window], dict[str, int]]:
    """(train windows, validation windows, counts of skipped windows) for all sequences.

    Curated sequences (Vimeo90K) are split whole by hashing their name; generic sequences by segments of
    ``segment`` frames (a window is kept only when all of its frames lie in one segment), held out across
    all sequences together so that about ``val_fraction`` of their windows are validation (``split``).
    """
    stats = {"duplicate_or_cut": 0, "straddle": 0}
    found: list[tuple[Window, bool | tuple[int, int]]] = []  # window, and its split: decided or its segment
    per_segment: dict[tuple[int, int], int] = {}
    for si, seq in enumerate(sequences):
        n = len(seq)
        bad = _bad_pairs(seq) if skip_bad else np.zeros(max(n - 1, 0), dtype=bool)
        bad_prefix = np.concatenate(([0], np.cumsum(bad)))
        n_seg = math.ceil(n / segment)
        legacy = {i for i in range(n_seg) if split == "sequence" and split_of(seq.name, i, n_seg, val_fraction)}
        for k in lengths:
            for start in range(n - k + 1):
                if bad_prefix[start + k - 1] - bad_prefix[start] > 0:
                    stats["duplicate_or_cut"] += 1
                    continue
                if seq.curated:
                    found.append((Window(si, start, k), _unit_hash(seq.name) < val_fraction))
                    continue
                seg = start // segment
                if (start + k - 1) // segment != seg:
                    stats["straddle"] += 1
                    continue
                if split == "sequence":
                    found.append((Window(si, start, k), seg in legacy))
                else:
                    found.append((Window(si, start, k), (si, seg)))
                    per_segment[(si, seg)] = per_segment.get((si, seg), 0) + 1
    held_out = _held_out_segments(sequences, per_segment, val_fraction)
    train: list[Window] = []
    val: list[Window] = []
    for window, where in found:
        is_val = where if isinstance(where, bool) else where in held_out
        (val if is_val else train).append(window)
    return train, val, stats


def build_splits(
    sources: Sequence[str],
    lengths: Sequence[int],
    *,
    video_scale: float = 1.0,
    max_frames: int = 0,
    val_fraction: float = 0.1,
    segment: int = 16,
    skip_bad: bool = True,
    split: Split = "dataset",
) -> tuple[list[FrameSequence], list[Window], list[Window], dict[str, int]]:
    """Load all sources and window them: (sequences, train, validation, skipped counts)."""
    sequences: list[FrameSequence] = []
    for spec in sources:
        sequences.extend(load_source(spec, video_scale, max_frames))
    train, val, stats = make_windows(sequences, lengths, val_fraction, segment, skip_bad, split)
    return sequences, train, val, stats


def sequence_identity(seq: FrameSequence) -> dict[str, Any]:
    """Frame size, length and a content hash of a sequence: what a resumed run checks its data against.

    The hash covers the first, middle and last frames (a decoded video, or a frame folder's first frame
    and its file names), so another clip of the same name, or the same clip at another ``video_scale``
    or ``@scale``, is told apart without reading everything again.
    """
    h, w = seq.size
    n = len(seq)
    digest = hashlib.sha1(f"{n}:{h}x{w}".encode())
    if isinstance(seq, FileSequence):
        digest.update("/".join(p.name for p in seq.paths).encode())
        picks = [0] if n else []
    else:
        picks = sorted({0, n // 2, n - 1}) if n else []
    for i in picks:
        digest.update(np.ascontiguousarray(seq.frame(i)).tobytes())
    return {"size": [h, w], "frames": n, "content": digest.hexdigest()[:16]}


def expand_inner(windows: Sequence[Window]) -> list[Window]:
    """One window per inner frame (for validation: every It of every window)."""
    return [Window(w.seq, w.start, w.length, j) for w in windows for j in range(1, w.length - 1)]


# ---------------------------------------------------------------------------- dataset
class WindowDataset(Dataset):
    """Map-style dataset of windows; an item key is ``(window index, augmentation seed)``.

    Items: ``img0``, ``gt``, ``img1`` uint8 tensors (3, H, W), ``t`` float32 tensor (1, 1, 1) and
    ``index``. The augmentation randomness comes only from the key, so the data is a pure function of
    the sampler's output (exact resume, any number of workers or processes).
    """

    def __init__(
        self,
        sequences: Sequence[FrameSequence],
        windows: Sequence[Window],
        crop: tuple[int, int] | None,
        augment: Augment | None = None,
        midpoint_only: bool = False,
        crop_option: str = "crop",
    ) -> None:
        self.sequences = list(sequences)
        self.windows = list(windows)
        self.crop = crop
        self.augment = augment
        self.midpoint_only = midpoint_only
        if midpoint_only and any(w.length % 2 == 0 for w in self.windows):
            raise ConfigError("windows: this network interpolates t = 0.5 only; use odd window lengths (3, 5, 7)")
        if crop is not None:
            for si in sorted({w.seq for w in self.windows}):
                h, w = self.sequences[si].size
                if h < crop[0] or w < crop[1]:
                    raise ConfigError(
                        f"{crop_option}: {crop[0]}x{crop[1]} is larger than the frames of {self.sequences[si].name} "
                        f"({h}x{w})"
                    )

    def __len__(self) -> int:
        return len(self.windows)

    def fingerprint(self) -> str:
        """Short hash of the window list (a resumed run checks it sees the same data)."""
        h = hashlib.sha1()
        for w in self.windows:
            h.update(f"{self.sequences[w.seq].name}:{w.start}:{w.length}:{w.inner};".encode())
        return h.hexdigest()[:16]

    def __getitem__(self, key: tuple[int, int] | int) -> dict[str, torch.Tensor]:
        index, seed = (key, 0) if isinstance(key, int) else key
        win = self.windows[index]
        rng = np.random.default_rng(seed)
        if win.inner is not None:
            inner = win.inner
        elif self.midpoint_only:
            inner = (win.length - 1) // 2
        else:
            inner = int(rng.integers(1, win.length - 1))
        seq = self.sequences[win.seq]
        frames = [seq.frame(win.start), seq.frame(win.start + inner), seq.frame(win.start + win.length - 1)]
        t = win.t(inner)
        if self.augment is not None:
            frames, t = augment_window(frames, t, rng, self.augment, self.crop, (0, inner, win.length - 1))
        elif self.crop is not None:
            frames = [center_crop(f, self.crop) for f in frames]
        img0, gt, img1 = (torch.from_numpy(np.require(f, requirements=["C", "W"])).permute(2, 0, 1) for f in frames)
        return {"img0": img0, "gt": gt, "img1": img1, "t": torch.tensor([[[t]]], dtype=torch.float32),
                "index": torch.tensor(index)}  # fmt: skip


def sample_seed(seed: int, epoch: int, position: int) -> int:
    """Augmentation seed of the sample at ``position`` of epoch ``epoch``."""
    return int(np.random.SeedSequence([seed, epoch, position]).generate_state(1, np.uint64)[0])


class StepSampler(Sampler[list[tuple[int, int]]]):
    """Batch sampler keyed by the global step: step s reads a fixed slice of a per-epoch permutation.

    The global batch of step s is positions ``[s' * B, (s' + 1) * B)`` of epoch ``s // steps_per_epoch``
    (``s'`` = step within the epoch, last partial batch dropped); process ``rank`` of ``world`` takes its
    ``B / world`` consecutive share. Resuming at step s therefore continues the exact data order.
    """

    def __init__(
        self, num_items: int, global_batch: int, seed: int, start_step: int = 0,
        stop_step: int | None = None, rank: int = 0, world: int = 1,
    ) -> None:  # fmt: skip
        if global_batch % world:
            raise ConfigError(f"batch_size: {global_batch} is not divisible by the number of processes ({world})")
        if num_items < global_batch:
            raise ConfigError(f"batch_size: {global_batch} is larger than the number of training windows ({num_items})")
        self.num_items, self.global_batch, self.seed = num_items, global_batch, seed
        self.start_step, self.stop_step, self.rank, self.world = start_step, stop_step, rank, world
        self.steps_per_epoch = num_items // global_batch

    def state(self, step: int) -> dict[str, int]:
        """Data-order state before ``step``: epoch and position within it."""
        return {"epoch": step // self.steps_per_epoch, "position": (step % self.steps_per_epoch) * self.global_batch,
                "seed": self.seed, "num_items": self.num_items, "global_batch": self.global_batch}  # fmt: skip

    def batch(self, step: int) -> list[tuple[int, int]]:
        """This process's keys for ``step``."""
        epoch, within = divmod(step, self.steps_per_epoch)
        perm = self._perm(epoch)
        per = self.global_batch // self.world
        first = within * self.global_batch + self.rank * per
        return [(int(perm[p]), sample_seed(self.seed, epoch, p)) for p in range(first, first + per)]

    def _perm(self, epoch: int) -> np.ndarray:
        cached = getattr(self, "_cache", None)
        if cached is None or cached[0] != epoch:
            self._cache = (epoch, np.random.default_rng([self.seed, epoch]).permutation(self.num_items))
        return self._cache[1]

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        step = self.start_step
        while self.stop_step is None or step < self.stop_step:
            yield self.batch(step)
            step += 1

    def __len__(self) -> int:
        if self.stop_step is None:
            raise TypeError("an open-ended StepSampler has no length")
        return max(self.stop_step - self.start_step, 0)
