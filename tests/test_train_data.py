"""vsrife.train data: layouts, windows, split, skipping duplicates/cuts, augmentation, step-keyed sampling."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from vsrife.media import read_frames
from vsrife.samples import sample_path
from vsrife.train.augment import Augment, augment_window
from vsrife.train.config import ConfigError
from vsrife.train.data import (
    ArraySequence,
    StepSampler,
    Window,
    WindowDataset,
    build_splits,
    expand_inner,
    load_source,
    make_windows,
    pair_psnr,
    vimeo_sequences,
)
from vsrife.train.synthetic import write_frames, write_vimeo


@pytest.fixture(scope="module")
def carphone() -> np.ndarray:
    return read_frames(sample_path("carphone"), 0, 40)


@pytest.fixture(scope="module")
def bikes_small() -> np.ndarray:
    import cv2

    frames = read_frames(sample_path("bikes"), 20, 20)  # a hard cut lies near frame 31
    return np.stack([cv2.resize(f, (176, 144), interpolation=cv2.INTER_AREA) for f in frames])


def test_vimeo_triplet_layout(tmp_path: Path, carphone: np.ndarray) -> None:
    groups = [carphone[i : i + 3] for i in range(0, 15, 3)]
    root = write_vimeo(tmp_path / "vimeo_triplet", groups, test=[4])
    train = vimeo_sequences(root, "triplet", "train")
    test = vimeo_sequences(root, "triplet", "test")
    assert [len(s) for s in train] == [3, 3, 3, 3] and len(test) == 1
    assert train[0].size == (144, 176)
    seqs, tr, va, _ = build_splits([f"vimeo-triplet:{root}"], [3], val_fraction=0.5)
    assert len(tr) + len(va) == 4 and all(w.length == 3 and w.start == 0 for w in tr + va)
    ds = WindowDataset(seqs, tr, (64, 64), Augment(0, 0, 0, 0, 0))
    item = ds[(0, 7)]
    assert item["img0"].shape == (3, 64, 64) and item["img0"].dtype.is_floating_point is False
    assert float(item["t"]) == 0.5
    # the middle frame of the window is the ground truth
    full = WindowDataset(seqs, tr, None)[0]
    assert np.array_equal(full["gt"].permute(1, 2, 0).numpy(), seqs[tr[0].seq].frame(1))


def test_vimeo_septuplet_arbitrary_t(tmp_path: Path, carphone: np.ndarray) -> None:
    root = write_vimeo(tmp_path / "vimeo_septuplet", [carphone[0:7], carphone[7:14]], septuplet=True)
    seqs, tr, va, _ = build_splits([f"vimeo-septuplet:{root}"], [3, 4, 7], val_fraction=0.0)
    assert len(tr) == 2 * (5 + 4 + 1) and not va
    ds = WindowDataset(seqs, expand_inner([w for w in tr if w.length == 7]), None)
    ts = sorted(float(ds[i]["t"]) for i in range(len(ds)))
    assert ts == pytest.approx(sorted([j / 6 for j in range(1, 6)] * 2))


def test_missing_vimeo_list_is_clear(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"data: .*tri_trainlist\.txt"):
        load_source(f"vimeo-triplet:{tmp_path}")
    with pytest.raises(ConfigError, match="data: unknown source kind"):
        load_source("youtube:abc")


def test_frame_folder_skips_duplicates_and_cuts(tmp_path: Path, carphone: np.ndarray, bikes_small: np.ndarray) -> None:
    frames = [*carphone[:8], carphone[7], *bikes_small[:6]]  # duplicate at 7->8, cut at 8->9
    assert pair_psnr(frames[7], frames[8]) == np.inf
    assert pair_psnr(frames[8], frames[9]) < 16
    folder = write_frames(tmp_path / "clip", frames)
    seqs = load_source(f"frames:{folder}")
    assert len(seqs) == 1 and len(seqs[0]) == len(frames)
    train, _, stats = make_windows(seqs, [3], val_fraction=0.0, segment=100)
    starts = {w.start for w in train}
    assert starts == {0, 1, 2, 3, 4, 5, 9, 10, 11, 12}  # every window touching 7-8 or 8-9 is gone
    assert stats["duplicate_or_cut"] == 3
    train_all, _, _ = make_windows(seqs, [3], val_fraction=0.0, segment=100, skip_bad=False)
    assert len(train_all) == len(frames) - 2


def test_synthetic_pans_keep_every_window() -> None:
    """Synthetic sequences are one shot by construction: fast pans, whose neighbours fall under the 16 dB
    "cut" bound, are kept (they were dropped, leaving only the slow ones)."""
    seqs = load_source("synthetic:4")
    lowest = min(pair_psnr(s.frame(0), s.frame(1)) for s in seqs)
    assert lowest < 16  # at least one fast pan among these seeds
    train, val, stats = make_windows(seqs, [3], val_fraction=0.2, segment=24)
    assert stats["duplicate_or_cut"] == 0
    assert {w.seq for w in train + val} == set(range(len(seqs)))
    assert val and all(w.seq in {v.seq for v in train} for w in val)  # held out by segment, not whole sequences


def test_frame_folder_of_mixed_sizes_or_unreadable_images(
    tmp_path: Path, carphone: np.ndarray, bikes_small: np.ndarray
) -> None:
    """One sequence, one size: a frame of another size (or not an image) is named, whether or not pairs are
    checked for cuts when the windows are made."""
    import cv2

    odd = cv2.resize(carphone[4], (160, 128))
    folder = write_frames(tmp_path / "mixed", [*carphone[:4], odd, *carphone[5:8]])
    for skip_bad in (True, False):
        with pytest.raises(ConfigError, match=r"data: .*00004\.png is 160x128, but frames/mixed has 176x144 frames"):
            (seq,) = load_source(f"frames:{folder}")
            make_windows([seq], [3], val_fraction=0.0, segment=100, skip_bad=skip_bad)
            [seq.frame(i) for i in range(len(seq))]  # what the crops read
    broken = write_frames(tmp_path / "broken", list(carphone[:4]))
    victim = sorted(broken.iterdir())[2]
    victim.write_bytes(b"not a png")
    with pytest.raises(ConfigError, match=f"data: cannot read image {victim}"):
        (seq,) = load_source(f"frames:{broken}")
        make_windows([seq], [3], val_fraction=0.0, segment=100)


def test_video_source_and_scale(carphone: np.ndarray) -> None:
    (seq,) = load_source("sample:carphone@0.5", max_frames=12)
    assert len(seq) == 12 and seq.size == (72, 88)
    (full,) = load_source("sample:carphone", max_frames=5)
    assert np.array_equal(full.frame(3), carphone[3])


def test_split_is_deterministic_and_disjoint(carphone: np.ndarray) -> None:
    seqs = [ArraySequence("clip", np.repeat(carphone, 3, axis=0)[::1][:120])]
    a = make_windows(seqs, [3, 4], val_fraction=0.2, segment=10, skip_bad=False)
    b = make_windows(seqs, [3, 4], val_fraction=0.2, segment=10, skip_bad=False)
    assert a == b
    train, val, _ = a
    assert val and train
    frames_train = {f for w in train for f in range(w.start, w.start + w.length)}
    frames_val = {f for w in val for f in range(w.start, w.start + w.length)}
    assert not frames_train & frames_val
    val_segments = {w.start // 10 for w in val}
    assert len(val_segments) == round(0.2 * 12)


def test_temporal_reversal_maps_t() -> None:
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 255, (8, 8, 3), dtype=np.uint8) for _ in range(3)]
    out, t = augment_window(frames, 0.25, np.random.default_rng(1), Augment(0, 0, 0, 0, reverse=1.0), None)
    assert t == 0.75
    assert np.array_equal(out[0], frames[2]) and np.array_equal(out[1], frames[1]) and np.array_equal(out[2], frames[0])
    out, t = augment_window(frames, 0.25, np.random.default_rng(1), Augment(0, 0, 0, 0, 0), None)
    assert t == 0.25 and all(np.array_equal(a, b) for a, b in zip(out, frames, strict=True))


def test_augmentations_apply_to_all_frames() -> None:
    rng = np.random.default_rng(0)
    base = rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)
    frames = [base, base.copy(), base.copy()]
    for aug in (Augment(1, 0, 0, 0, 0), Augment(0, 1, 0, 0, 0), Augment(0, 0, 1, 0, 0), Augment(0, 0, 0, 1, 0)):
        out, _ = augment_window(frames, 0.5, np.random.default_rng(3), aug, (12, 12))
        assert out[0].shape == (12, 12, 3)
        assert np.array_equal(out[0], out[1]) and np.array_equal(out[0], out[2])
    flipped, _ = augment_window(frames, 0.5, np.random.default_rng(3), Augment(1, 0, 0, 0, 0), None)
    assert np.array_equal(flipped[0], base[:, ::-1])
    perm, _ = augment_window(frames, 0.5, np.random.default_rng(3), Augment(0, 0, 0, 1, 0), None)
    assert sorted(perm[0].reshape(-1, 3).sum(0).tolist()) == sorted(base.reshape(-1, 3).sum(0).tolist())
    rect = [np.zeros((8, 12, 3), np.uint8)] * 3
    rotated, _ = augment_window(rect, 0.5, np.random.default_rng(3), Augment(0, 0, 1, 0, 0), None)
    assert rotated[0].shape == (8, 12, 3)  # non-square: 180 degrees only, the batch shape is kept


def test_dataset_items_depend_only_on_key(carphone: np.ndarray) -> None:
    seqs = [ArraySequence("clip", carphone)]
    windows = [Window(0, s, 4) for s in range(20)]
    ds = WindowDataset(seqs, windows, (64, 64), Augment())
    a, b, c = ds[(5, 123)], ds[(5, 123)], ds[(5, 124)]
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert not all(np.array_equal(a[k], c[k]) for k in ("img0", "gt"))
    assert float(a["t"]) in (pytest.approx(1 / 3), pytest.approx(2 / 3))
    with pytest.raises(ConfigError, match="crop: 256x256 is larger"):
        WindowDataset(seqs, windows, (256, 256), Augment())
    with pytest.raises(ConfigError, match=r"windows: .*t = 0\.5 only"):
        WindowDataset(seqs, windows, (64, 64), Augment(), midpoint_only=True)
    mid = WindowDataset(seqs, [Window(0, 0, 5)], None, midpoint_only=True)
    assert float(mid[(0, 9)]["t"]) == 0.5


def test_step_sampler_resume_and_ranks() -> None:
    full = StepSampler(50, 8, seed=7)
    batches = [full.batch(s) for s in range(15)]  # crosses an epoch boundary (6 steps per epoch)
    resumed = list(StepSampler(50, 8, seed=7, start_step=9, stop_step=15))
    assert resumed == batches[9:]
    r0, r1 = StepSampler(50, 8, 7, rank=0, world=2), StepSampler(50, 8, 7, rank=1, world=2)
    for s in range(8):
        assert r0.batch(s) + r1.batch(s) == batches[s]
    epoch0 = [k[0] for s in range(6) for k in batches[s]]
    assert len(set(epoch0)) == 48  # a permutation: no window twice within an epoch
    assert full.state(9) == {"epoch": 1, "position": 24, "seed": 7, "num_items": 50, "global_batch": 8}
    with pytest.raises(ConfigError, match="batch_size: 9 is not divisible"):
        StepSampler(50, 9, 7, world=2)
    with pytest.raises(ConfigError, match="batch_size: 64 is larger"):
        StepSampler(50, 64, 7)


def _coordinate_frame(h: int, w: int) -> np.ndarray:
    """A frame whose pixel (y, x) holds (y, x, 0): a crop's origin can be read from its first pixel."""
    yy, xx = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    return np.stack((yy, xx, np.zeros_like(yy)), -1).astype(np.uint8)


def test_pan_moves_the_crop_a_whole_step_per_frame() -> None:
    base = _coordinate_frame(120, 200)
    frames = [base, base, base]
    steps = set()
    for seed in range(40):
        for positions in ((0, 1, 2), (0, 2, 3)):
            aug = Augment(0, 0, 0, 0, 0, pan=1.0, pan_pixels=3)
            out, _ = augment_window(frames, 0.5, np.random.default_rng(seed), aug, (64, 64), positions)
            origins = [np.array(f[0, 0, :2], dtype=int) for f in out]
            step = (origins[2] - origins[0]) // positions[2]
            assert np.array_equal(origins[2] - origins[0], step * positions[2])
            assert np.array_equal(origins[1] - origins[0], step * positions[1])
            assert np.abs(step).max() <= 3 and all(f.shape == (64, 64, 3) for f in out)
            steps.add(tuple(step))
            # Without the pan the same draws give the same (static) crop as the first frame's.
            still, _ = augment_window(frames, 0.5, np.random.default_rng(seed), Augment(0, 0, 0, 0, 0), (64, 64),
                                      positions)  # fmt: skip
            assert all(np.array_equal(f, out[0]) for f in still)
    assert len(steps) > 10  # steps of both signs on both axes


def test_pan_shrinks_where_the_frame_has_no_room() -> None:
    base = _coordinate_frame(64, 200)  # no vertical room for a 64-pixel crop
    for seed in range(20):
        out, _ = augment_window([base] * 3, 0.5, np.random.default_rng(seed),
                                Augment(0, 0, 0, 0, 0, pan=1.0, pan_pixels=3), (64, 64), (0, 1, 2))  # fmt: skip
        assert all(int(f[0, 0, 0]) == 0 for f in out)
        assert all(0 <= int(f[0, 0, 1]) <= 200 - 64 for f in out)


def test_val_fraction_is_the_share_of_the_whole_dataset(carphone: np.ndarray) -> None:
    """Held-out segments are chosen across all sequences: short shots and clips are no longer held out a whole
    16-frame segment each (val_fraction 0.1 held out 46% of 24-frame shots' windows, 88% of a 20-frame clip)."""
    shots = [ArraySequence(f"shot{i}", carphone[i * 4 : i * 4 + 24]) for i in range(5)]
    clip = [ArraySequence("clip", carphone[:20])]
    for seqs in (shots, clip):
        train, val, _ = make_windows(seqs, [3], val_fraction=0.1, segment=16, skip_bad=False)
        assert 0.05 <= len(val) / (len(train) + len(val)) <= 0.15
        for w in val:  # still no frame shared with a training window of the same sequence
            assert all(t.start + t.length <= w.start or w.start + w.length <= t.start for t in train if t.seq == w.seq)
    train, val, _ = make_windows(shots, [3, 5], val_fraction=0.5, segment=16, skip_bad=False)
    assert 0.4 <= len(val) / (len(train) + len(val)) <= 0.6
    assert not make_windows(shots, [3], val_fraction=0.0, segment=16, skip_bad=False)[1]
    # the per-sequence split, kept for checkpoints from before, is what it was: a segment of every shot
    train, val, _ = make_windows(shots, [3], val_fraction=0.1, segment=16, skip_bad=False, split="sequence")
    assert {w.seq for w in val} == set(range(5)) and len(val) / (len(train) + len(val)) > 0.3


def test_vimeo_list_with_missing_frames_is_refused_when_loaded(tmp_path: Path, carphone: np.ndarray) -> None:
    """A listed sequence without its frames is named up front (it stopped training when first sampled)."""
    root = write_vimeo(tmp_path / "vimeo", [carphone[i : i + 3] for i in range(0, 12, 3)])
    missing = root / "sequences" / "00001" / "0003" / "im2.png"
    missing.unlink()
    with pytest.raises(ConfigError, match=rf"data: 1 of the 4 sequences listed in .*tri_trainlist\.txt lack frames "
                                          rf"\(missing: {missing}\); restore them or remove their lines"):  # fmt: skip
        load_source(f"vimeo-triplet:{root}")
    (root / "tri_trainlist.txt").write_text("00001/0001\n00001/0009\n")  # a listed folder that does not exist
    with pytest.raises(ConfigError, match=r"1 of the 2 sequences .*0009/im1\.png, .*0009/im2\.png, .*0009/im3\.png"):
        load_source(f"vimeo-triplet:{root}")


def test_frame_folders_are_in_natural_order(tmp_path: Path, carphone: np.ndarray) -> None:
    """Unpadded numbers sort by value (1, 2, ..., 10, 11), not as text (1, 10, 11, 2, ...); folders of shots too."""
    write_frames(tmp_path / "shots" / "shot2", carphone[:12], pattern="{}.png")
    write_frames(tmp_path / "shots" / "shot10", carphone[12:15], pattern="{}.png")
    first, second = load_source(f"frames:{tmp_path / 'shots'}")
    assert (first.name, second.name) == ("frames/shot2", "frames/shot10")
    assert [p.name for p in first.paths] == [f"{i}.png" for i in range(12)]  # type: ignore[attr-defined]
    assert all(np.array_equal(first.frame(i), carphone[i]) for i in (2, 10, 11))
