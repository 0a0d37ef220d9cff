"""The bilateral cost-volume start (``corr_radius``): it finds real motion, follows t, and plugs into IFNet."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from vsrife.arch import build_network
from vsrife.arch.correlation import BilateralCorrelation
from vsrife.models import get_model
from vsrife.train.data import load_source


@pytest.fixture(scope="module")
def frame() -> torch.Tensor:
    """A real 640x272 camera frame (bikes.mp4), (1, 3, H, W) in [0, 1]."""
    seq = load_source("sample:bikes")[0]
    return torch.from_numpy(seq.frame(10).copy()).permute(2, 0, 1)[None].float() / 255.0


def _pair(frame: torch.Tensor, shift: int) -> tuple[torch.Tensor, torch.Tensor]:
    """I0 and I1 = I0 panned so that content moves ``-shift`` pixels in x from I0 to I1."""
    return frame[:, :, 8:264, 40:552], frame[:, :, 8:264, 40 + shift : 552 + shift]


@pytest.mark.parametrize("t", [0.5, 1 / 3])
def test_finds_a_real_pan_and_splits_it_by_t(frame: torch.Tensor, t: float) -> None:
    torch.manual_seed(0)
    corr = BilateralCorrelation(radius=6)
    img0, img1 = _pair(frame, 16)
    with torch.no_grad():
        flow = corr(img0, img1, torch.full((1, 1, 1, 1), t))
    assert flow.shape == (1, 4, 256, 512)
    # centre region (the border replicates edges): motion d = -16 px, F_t->0 = -t d, F_t->1 = (1 - t) d
    centre = flow[0, :, 64:192, 128:384]
    d = -centre[0].median() / t
    assert -22 < d < -10, f"estimated motion {d:.1f} px, true -16"
    assert centre[1].abs().median() < 1.0
    torch.testing.assert_close(flow[:, 2:4], -flow[:, 0:2] * (1 - t) / t)


def test_no_motion_gives_zero_flow(frame: torch.Tensor) -> None:
    torch.manual_seed(0)
    img0, _ = _pair(frame, 0)
    with torch.no_grad():
        flow = BilateralCorrelation(radius=4)(img0, img0, torch.full((1, 1, 1, 1), 0.5))
    assert flow.abs().max() < 0.5


def test_gradients_reach_the_encoder_and_temperature(frame: torch.Tensor) -> None:
    corr = BilateralCorrelation(radius=2)
    img0, img1 = _pair(frame, 8)
    corr(img0[:, :, :64, :64], img1[:, :, :64, :64], torch.full((1, 1, 1, 1), 0.5)).abs().mean().backward()
    assert corr.log_temperature.grad is not None and corr.log_temperature.grad != 0
    assert corr.encoder[0].weight.grad is not None and corr.encoder[0].weight.grad.abs().sum() > 0


def test_ifnet_with_cost_volume(frame: torch.Tensor) -> None:
    spec = replace(get_model("4.6").spec, widths=(16, 16), scales=(2, 1), corr_radius=3)
    torch.manual_seed(0)
    net = build_network(spec).eval()
    img0, img1 = _pair(frame, 8)
    with torch.no_grad():
        est = net.flownet.estimate(img0, img1, torch.full((1, 1, 1, 1), 0.25))
        out = net(img0, img1, timestep=torch.full((1, 1, 1, 1), 0.25))
    # the cost-volume start is the first entry, one more per block; the mask starts as the t-weighted blend
    assert len(est.flows) == len(est.mask_logits) == 3
    torch.testing.assert_close(torch.sigmoid(est.mask_logits[0]), torch.full_like(est.mask_logits[0], 0.75))
    assert out.shape == img0.shape and torch.isfinite(out).all()
    assert "flownet.corr.log_temperature" in net.state_dict()


@pytest.mark.parametrize("version", ["3.6", "4.0"])
def test_cost_volume_only_for_plain_4x(version: str) -> None:
    """v3 has no timestep; 4.0's large-motion restart re-runs the first block, which then does not exist."""
    spec = get_model(version).spec
    assert spec.family == "v3" or spec.large_motion_restart
    with pytest.raises(ValueError, match="corr_radius"):
        build_network(replace(spec, corr_radius=2))


def test_radius_must_be_positive() -> None:
    with pytest.raises(ValueError, match="radius"):
        BilateralCorrelation(radius=0)


def test_filter_runs_an_exported_cost_volume_model(tmp_path: Path, sample_clip: Callable[[str], Any]) -> None:
    """A trained cost-volume network travels like any other: export -> ``RIFE(model_path=...)``."""
    vs = pytest.importorskip("vapoursynth")
    import vsrife
    from vsrife.train.export import export_model

    spec = replace(get_model("4.6").spec, widths=(16, 16), scales=(2, 1), corr_radius=3)
    torch.manual_seed(0)
    export_model(build_network(spec), tmp_path / "corr", name="corr-test")
    clip = vs.core.resize.Bicubic(sample_clip("bikes")[10:13], 320, 136, format=vs.RGBS, matrix_in_s="709")
    out = vsrife.RIFE(clip, model_path=str(tmp_path / "corr"))
    assert out.num_frames == 6
    mid, left, right = (np.asarray(out.get_frame(i)[0]) for i in (1, 0, 2))
    assert np.isfinite(mid).all() and np.array_equal(left, np.asarray(clip.get_frame(0)[0]))
    # untrained blocks, but the cost-volume start and the t-weighted mask already give a plausible frame
    assert not np.array_equal(mid, left) and not np.array_equal(mid, right)
    mse = float(np.mean((mid - (left + right) / 2) ** 2))
    assert 10 * np.log10(1 / mse) > 25  # dB against the neighbour average (38 measured)
