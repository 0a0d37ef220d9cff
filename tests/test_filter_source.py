"""vsrife.filter.source.open_video: BestSource with its index files inside the configured cache folder."""

from __future__ import annotations

from pathlib import Path

import pytest

vs = pytest.importorskip("vapoursynth")

from vsrife.filter.source import bestsource_cache, open_video  # noqa: E402
from vsrife.samples import sample_path  # noqa: E402

pytestmark = pytest.mark.skipif(not hasattr(vs.core, "bs"), reason="needs BestSource (core.bs)")


def test_index_files_go_inside_the_cache_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cache = tmp_path / "cache" / "bsindex"
    monkeypatch.setenv("VSRIFE_BS_CACHE", str(cache))
    assert bestsource_cache() == cache
    clips = {name: open_video(sample_path(name)) for name in ("carphone", "bikes")}
    assert clips["carphone"].num_frames == 120 and clips["bikes"].num_frames == 250
    inside = sorted(p for p in cache.rglob("*") if p.is_file())
    outside = sorted(p for p in tmp_path.rglob("*") if p.is_file() and cache not in p.parents)
    assert not outside, f"written next to the cache folder: {outside}"
    # one index per video (a shared file would make every other video re-index)
    assert len([p for p in inside if p.name.endswith(".bsindex")]) == 2, inside
    assert {p.name.split(".")[0] for p in inside} >= {"carphone_pristine", "bikes"}


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(vs.Error, match="does not exist"):
        open_video(tmp_path / "nope.mp4")


def test_read_frames_without_ffmpeg_decodes_through_vapoursynth(monkeypatch: pytest.MonkeyPatch) -> None:
    """GPU training machines often lack ffmpeg: the same frames come from BestSource + zimg."""
    import shutil

    import numpy as np

    from vsrife import media
    from vsrife.samples import sample_path

    ref = media.read_frames(sample_path("bikes"), 40, 3)
    which = shutil.which
    monkeypatch.setattr(media.shutil, "which", lambda name: None if name.startswith("ff") else which(name))
    got = media.read_frames(sample_path("bikes"), 40, 3)
    assert got.shape == ref.shape and got.dtype == np.uint8
    diff = np.abs(got.astype(int) - ref.astype(int))
    assert diff.mean() < 2.0, diff.mean()  # zimg vs swscale colour conversion: a code value or two
    frame_changes = np.abs(np.diff(ref.astype(int), axis=0)).mean()
    assert diff.mean() < frame_changes / 2  # and not a neighbouring frame
