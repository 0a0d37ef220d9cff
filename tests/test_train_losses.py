"""vsrife.train losses and teachers: Laplacian loss, distillation, DIS convention, RAFT guard, gradients."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

from vsrife.arch import ArchSpec, build_network
from vsrife.arch.warp import backward_warp
from vsrife.media import read_frames
from vsrife.quality import psnr, to_tensor
from vsrife.samples import sample_path
from vsrife.train.losses import LaplacianLoss, better_mask, distillation_loss, laplacian_pyramid, photometric_error
from vsrife.train.model import Objective, TrainModule
from vsrife.train.teachers import DISTeacher, RAFTTeacher

try:
    from tests import reference as ref
except ImportError:  # run from inside tests/
    import reference as ref  # type: ignore[no-redef]

SMALL_V4 = ArchSpec(family="v4", widths=(16, 16, 16), scales=(4, 2, 1))
SMALL_V3 = ArchSpec(family="v3", widths=(16, 16, 16), scales=(4, 2, 1), act="prelu", body="v3", head="v3",
                    ensemble="flip")  # fmt: skip


@pytest.fixture(scope="module")
def triplet() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Real frames k, k+2, k+4 of bikes (camera motion of several pixels), cropped to 128x192."""
    frames = read_frames(sample_path("bikes"), 40, 5)[:, 60:188, 200:392]
    return to_tensor(frames[0]), to_tensor(frames[2]), to_tensor(frames[4])


def test_laplacian_loss_values() -> None:
    torch.manual_seed(0)
    x = torch.rand(2, 3, 64, 64)
    lap = LaplacianLoss(5, lowpass=True)
    assert float(lap(x, x)) == 0.0
    small = float(lap(x + 0.01 * torch.randn_like(x), x))
    large = float(lap(x + 0.1 * torch.randn_like(x), x))
    assert 0 < small < large
    assert float(lap(x, x + 0.1)) == pytest.approx(0.1, rel=1e-4)  # an offset only lives in the low-pass level
    assert float(LaplacianLoss(5)(x, x + 0.1)) == pytest.approx(0.0, abs=1e-6)  # the official loss ignores it
    assert float(lap(x, 1 - x)) == pytest.approx(float(lap(1 - x, x)))
    # the pyramid is a lossless decomposition: collapsing it gives the image back
    bands = laplacian_pyramid(x, 3)
    assert [b.shape[-1] for b in bands] == [64, 32, 16, 8]
    y = x.detach().requires_grad_(True)
    lap(y, x.flip(3)).backward()
    assert torch.isfinite(y.grad).all() and y.grad.abs().sum() > 0
    tiny = x[:, :, :20, :20]
    assert float(LaplacianLoss(5, lowpass=True)(tiny, tiny + 0.05)) > 0  # levels capped on tiny crops
    assert float(LaplacianLoss(5)(tiny, tiny.flip(3))) > 0
    assert float(LaplacianLoss(5)(x[:, :, :6, :6], x[:, :, :6, :6] + 0.05)) > 0  # no band left: the residual


def test_laplacian_loss_is_the_official_laploss() -> None:
    """Default LaplacianLoss = ECCV2022-RIFE's LapLoss (5 band-pass levels, no residual), on the same images."""
    official = ref.eccv_modules().laplacian.LapLoss(max_levels=5, channels=3)
    torch.manual_seed(1)
    pred, target = torch.rand(2, 3, 96, 128), torch.rand(2, 3, 96, 128)
    for a, b in ((pred, target), (pred, (pred + 0.02 * torch.randn_like(pred)).clamp(0, 1))):
        assert float(LaplacianLoss(5)(a, b)) == pytest.approx(float(official(a, b)), rel=1e-5)


def test_distillation_loss_values() -> None:
    teacher = torch.randn(2, 4, 16, 16)
    flows = [teacher + 1.0, teacher.clone(), teacher - 0.5]
    # per pixel over the 4 channels: rms (default) and l1 give the offset; summed over blocks
    assert float(distillation_loss(flows, teacher)) == pytest.approx(1.0 + 0.0 + 0.5)
    assert float(distillation_loss(flows, teacher, norm="l1")) == pytest.approx(1.0 + 0.0 + 0.5)
    epe = float(distillation_loss(flows, teacher, norm="epe"))
    assert epe == pytest.approx(2**0.5 + 0.0 + 0.5 * 2**0.5, rel=1e-3)
    mask = torch.zeros(2, 2, 16, 16)
    mask[:, 0] = 1  # distil F_t->0 only: half of the four channels
    assert float(distillation_loss(flows, teacher, [mask] * 3, norm="l1")) == pytest.approx((1.0 + 0.5) / 2)
    assert float(distillation_loss(flows, teacher, [mask] * 3)) == pytest.approx((1.0 + 0.5) / 2**0.5)
    assert float(distillation_loss(flows, teacher, [mask] * 3, norm="epe")) == pytest.approx(
        (2**0.5 + 0.5 * 2**0.5) / 2, rel=1e-3
    )


def test_distillation_loss_is_the_official_formula() -> None:
    """ECCV2022-RIFE model/IFNet.py: sum over blocks of mean(sqrt(mean_c (F_tea - F_i)^2) * mask), mask (N,1,H,W)."""
    torch.manual_seed(2)
    teacher = torch.randn(2, 4, 24, 32)
    flows = [teacher + torch.randn_like(teacher) * s for s in (2.0, 1.0, 0.3)]
    masks = [(torch.rand(2, 1, 24, 32) > 0.5).float() for _ in flows]
    pairs = zip(flows, masks, strict=True)
    official = sum(float((((teacher - f) ** 2).mean(1, True) ** 0.5 * m).mean()) for f, m in pairs)
    assert float(distillation_loss(flows, teacher, masks)) == pytest.approx(official, rel=1e-5)
    flows[0].requires_grad_(True)
    distillation_loss(flows, teacher, masks).backward()
    assert flows[0].grad is not None and torch.isfinite(flows[0].grad).all()
    student = torch.tensor([[[[0.2]], [[0.05]]]])
    assert better_mask(student, torch.full_like(student, 0.1)).flatten().tolist() == [1.0, 0.0]


def test_dis_teacher_convention(triplet: tuple[torch.Tensor, ...]) -> None:
    """backward_warp(I0, F_t->0) reproduces I_t far better than I0 itself (and the opposite sign is worse)."""
    img0, gt, img1 = triplet
    flow = DISTeacher("medium")(img0, gt, img1)
    assert flow.shape == (1, 4, 128, 192) and flow.dtype == torch.float32
    assert flow.abs().max() > 2  # real motion
    for src, f in ((img0, flow[:, :2]), (img1, flow[:, 2:])):
        base = psnr(src, gt)
        warped = psnr(backward_warp(src, f), gt)
        flipped = psnr(backward_warp(src, -f), gt)
        assert warped > base + 3, (base, warped)
        assert flipped < base
    err = photometric_error(img0, img1, gt, flow)
    assert err.shape == (1, 2, 128, 192) and float(err.mean()) < float((img0 - gt).abs().mean())


def test_raft_teacher_needs_torchvision(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "torchvision", None)
    monkeypatch.setitem(sys.modules, "torchvision.models.optical_flow", None)
    with pytest.raises(ImportError, match="teacher 'raft' needs torchvision"):
        RAFTTeacher(tmp_path / "raft.pth")


def test_raft_teacher_runs(tmp_path: Path) -> None:
    tv = pytest.importorskip("torchvision.models.optical_flow")
    torch.manual_seed(0)
    path = tmp_path / "raft_small.pth"
    torch.save(tv.raft_small(weights=None).state_dict(), path)
    with pytest.raises(ValueError, match=r"raft_weights: .* does not fit torchvision raft_large"):
        RAFTTeacher(path, small=False)
    teacher = RAFTTeacher(path, small=True, iters=2)
    x = torch.rand(2, 3, 64, 72)
    flow = teacher(x, x, x)
    assert flow.shape == (2, 4, 64, 72) and torch.isfinite(flow).all()


def _grads_by_block(module: TrainModule) -> list[float]:
    return [sum(float(p.grad.abs().sum()) for p in b.parameters() if p.grad is not None)
            for b in module.net.flownet.blocks()]  # fmt: skip


@pytest.mark.parametrize("spec", [SMALL_V4, SMALL_V3], ids=["v4", "v3"])
def test_distillation_gradient_reaches_every_block(spec: ArchSpec, triplet: tuple[torch.Tensor, ...]) -> None:
    torch.manual_seed(0)
    img0, gt, img1 = (x[:, :, :64, :64].repeat(2, 1, 1, 1) for x in triplet)
    module = TrainModule(build_network(spec).train(), privileged=False)
    t = torch.full((2, 1, 1, 1), 0.5)
    out = module(img0, img1, gt, t)
    teacher = DISTeacher()(img0, gt, img1)
    loss = distillation_loss(out["flows"], teacher)
    loss.backward()
    grads = _grads_by_block(module)
    assert len(grads) == 3 and all(g > 0 for g in grads), grads


@pytest.mark.parametrize("spec", [SMALL_V4, SMALL_V3], ids=["v4", "v3"])
def test_privileged_teacher_objective(spec: ArchSpec, triplet: tuple[torch.Tensor, ...]) -> None:
    """The privileged teacher learns from its own reconstruction loss; distillation never reaches it."""
    torch.manual_seed(0)
    img0, gt, img1 = (x[:, :, :64, :64] for x in triplet)
    net = build_network(spec, teacher=spec.family == "v3").train()
    module = TrainModule(net, privileged=True, teacher_width=16)
    tea_params = list(module.teacher.parameters() if spec.family == "v4" else net.flownet.block_tea.parameters())
    out = module(img0, img1, gt, torch.full((1, 1, 1, 1), 0.5))
    assert out["teacher_flow"].shape == (1, 4, 64, 64)
    objective = Objective(LaplacianLoss(5), distill_weight=0.01, distill_mask="all")
    _, terms = objective(out, img0, img1, gt)
    assert set(terms) == {"rec", "teacher", "distill", "total"}
    parts = {k: float(v.detach()) for k, v in terms.items()}
    assert parts["total"] == pytest.approx(parts["rec"] + parts["teacher"] + 0.01 * parts["distill"])
    terms["distill"].backward(retain_graph=True)
    assert all(p.grad is None or float(p.grad.abs().sum()) == 0 for p in tea_params)
    assert all(g > 0 for g in _grads_by_block(module))
    module.zero_grad()
    terms["teacher"].backward()
    assert sum(float(p.grad.abs().sum()) for p in tea_params if p.grad is not None) > 0


def test_better_mask_objective_with_dis(triplet: tuple[torch.Tensor, ...]) -> None:
    torch.manual_seed(0)
    img0, gt, img1 = (x[:, :, :64, :64] for x in triplet)
    module = TrainModule(build_network(SMALL_V4).train(), privileged=False)
    with torch.no_grad():
        out = module(img0, img1, gt, torch.full((1, 1, 1, 1), 0.5))
    teacher = DISTeacher()(img0, gt, img1)
    loss_all, t_all = Objective(LaplacianLoss(), distill_mask="all")(out, img0, img1, gt, teacher)
    loss_b, t_b = Objective(LaplacianLoss(), distill_mask="better")(out, img0, img1, gt, teacher)
    assert 0 < float(t_b["distill"]) <= float(t_all["distill"])
    assert float(t_b["rec"]) == float(t_all["rec"])
    assert 0.0 < float(t_all["rec"]) < 1.0 and torch.isfinite(loss_all) and torch.isfinite(loss_b)
