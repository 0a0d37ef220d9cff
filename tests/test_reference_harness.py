"""Smoke tests for tests/reference.py (the official-reference harness itself, not our networks)."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch

try:
    from tests import reference as ref
except ImportError:  # tests/ is not a package: pytest puts tests/ itself on sys.path
    import reference as ref  # type: ignore[no-redef]

LAYOUTS = Path(__file__).resolve().parent / "data" / "layouts"


@pytest.fixture(scope="module")
def root() -> Path:
    return ref.reference_root()


def _frames(h: int = 45, w: int = 67, seed: int = 3) -> tuple[torch.Tensor, torch.Tensor]:
    return ref.calibration_frames(seed, h, w, shift=2)


def test_versions() -> None:
    assert ref.REFERENCE_VERSIONS[:4] == ["paper", "hd", "hdv2", "3.6"]
    assert len(ref.REFERENCE_VERSIONS) == len(set(ref.REFERENCE_VERSIONS)) == 40
    for v in ("4.0", "4.12.lite", "4.16.lite", "4.22.lite", "4.25.lite", "4.25.heavy", "4.26", "4.26.heavy"):
        assert v in ref.REFERENCE_VERSIONS


def test_cache_layout(root: Path) -> None:
    assert (root / "eccv" / "model" / "IFNet.py").is_file()
    assert (root / "eccv" / "train_log" / "IFNet_HDv3.py").is_file()
    assert (root / "ref_vsrife" / "IFNet_HDv3_v4_26_heavy.py").is_file()
    assert (root / "vs-rife" / "__init__.py").is_file()


def test_import_hygiene() -> None:
    """Importing/using the harness leaves no `vsrife`, `model*`, `train_log*` or stub `torchvision` behind."""
    code = (
        "import sys; sys.path.insert(0, sys.argv[1])\n"
        "import tests.reference as R\n"
        "R.eccv_modules(); R.v4_module('4.6'); R.layout_of('hd')\n"
        "bad = [k for k in sys.modules if k == 'vsrife' or k.startswith(('vsrife.', 'model', 'train_log', "
        "'torchvision'))]\n"
        "assert not bad, bad\n"
        "assert 'ref_vsrife.IFNet_HDv3_v4_6' in sys.modules\n"
    )
    repo = Path(__file__).resolve().parent.parent
    res = subprocess.run([sys.executable, "-c", code, str(repo)], capture_output=True, text=True, check=False)
    assert res.returncode == 0, res.stderr


def test_real_v36_weights_load_strictly(root: Path) -> None:
    path = ref.official_v36_path()
    assert ref._sha256(path) == ref.V36_FLOWNET_SHA256
    sd = ref.official_v36_state_dict()
    assert len(sd) == 160
    assert all(k.startswith("module.") for k in sd)
    assert any(k.startswith("module.block_tea.") for k in sd)
    net = ref.eccv_modules().v3.IFNet()
    net.load_state_dict({k.removeprefix("module."): v for k, v in sd.items()}, strict=True)
    layout = json.loads((LAYOUTS / "3.6.json").read_text())
    assert {k: list(v.shape) for k, v in sd.items()} == layout["flownet.pkl"]


def test_real_v36_on_demo_frames() -> None:
    pytest.importorskip("PIL")
    img0, img1 = ref.demo_frames(0)
    model = ref.ReferenceModel.from_state_dicts("3.6", ref.reference_state_dicts("3.6", seed=None))
    out = model(img0, img1)
    assert out.shape == img0.shape == (1, 3, 256, 448)
    assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0
    blend = (img0 + img1) / 2
    l1 = float((out - blend).abs().mean())
    assert l1 < float((out - img0).abs().mean()) and l1 < float((out - img1).abs().mean())
    # identical frames -> (almost) the frame itself
    assert float((model(img0, img0) - img0).abs().mean()) < 5e-3
    # odd size: padded to 256x448 internally, cropped back
    crop = model(img0[..., :250, :445], img1[..., :250, :445])
    assert crop.shape == (1, 3, 250, 445)
    assert torch.isfinite(crop).all()


@pytest.mark.parametrize("version", ref.V4_VERSIONS)
def test_v4_random_odd_size(version: str) -> None:
    img0, img1 = _frames()
    model = ref.ReferenceModel.from_state_dicts(version, ref.reference_state_dicts(version, seed=0))
    out = model(img0, img1)
    assert out.shape == img0.shape == (1, 3, 45, 67)
    assert out.dtype == torch.float32
    assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0
    # random weights are calibrated so that the output really depends on t
    assert float((model(img0, img1, t=0.3) - out).abs().max()) > 1e-2


@pytest.mark.parametrize("version", ["paper", "hd", "hdv2", "3.6"])
def test_eccv_random_odd_size(version: str) -> None:
    img0, img1 = _frames()
    model = ref.ReferenceModel.from_state_dicts(version, ref.reference_state_dicts(version, seed=0))
    out = model(img0, img1)
    assert out.shape == (1, 3, 45, 67)
    assert torch.isfinite(out).all()
    tta = model(img0, img1, ensemble=True)
    assert tta.shape == out.shape and float((tta - out).abs().max()) > 1e-3
    # repeated calls give the same result (paper: no mutated default scale_list)
    assert torch.equal(model(img0, img1, scale=0.5), model(img0, img1, scale=0.5))
    with pytest.raises(ValueError):
        model(img0, img1, t=0.25)


def test_v4_ensemble_flag() -> None:
    img0, img1 = _frames()
    m = ref.ReferenceModel.from_state_dicts("4.6", ref.reference_state_dicts("4.6", seed=0))
    assert float((m(img0, img1, ensemble=True) - m(img0, img1)).abs().max()) > 1e-3
    m = ref.ReferenceModel.from_state_dicts("4.26", ref.reference_state_dicts("4.26", seed=0))
    with pytest.raises(ValueError, match="ensemble"):
        m(img0, img1, ensemble=True)


def test_v4_tolerates_training_extras() -> None:
    """Official 4.x files may carry training-only `module.teacher.*` / `module.caltime.*` (vs-rife: strict=False)."""
    img0, img1 = _frames()
    sd = ref.reference_state_dicts("4.18", seed=0)
    base = ref.ReferenceModel.from_state_dicts("4.18", sd)(img0, img1)
    extra = dict(sd["flownet.pkl"])
    extra["module.teacher.conv0.0.0.weight"] = torch.zeros(32, 31, 3, 3)
    extra["module.caltime.0.weight"] = torch.zeros(32, 17, 3, 3)
    out = ref.ReferenceModel.from_state_dicts("4.18", {"flownet.pkl": extra})(img0, img1)
    assert torch.equal(out, base)
    with pytest.raises(ValueError, match="module"):
        ref.ReferenceModel.from_state_dicts("4.18", {"flownet.pkl": {k[7:]: v for k, v in extra.items()}})


def test_padding_rules() -> None:
    assert ref.padded_size("3.6", 45, 67) == (64, 96)
    assert ref.padded_size("paper", 45, 67, scale=0.25) == (128, 128)
    assert ref.padded_size("hd", 1080, 1920, scale=0.5) == (1088, 1920)
    assert ref.padded_size("4.6", 45, 67, scale=2.0) == (64, 96)
    assert ref.padded_size("4.26", 45, 67) == (64, 128)
    assert ref.padded_size("4.25.lite", 45, 67) == (128, 128)
    assert ref.padded_size("4.25.lite", 45, 67, scale=0.5) == (256, 256)


def test_state_dicts_seeded_and_nondegenerate() -> None:
    a = ref.reference_state_dicts("hd", seed=1)
    b = ref.reference_state_dicts("hd", seed=1)
    c = ref.reference_state_dicts("hd", seed=2)
    assert set(a) == {"flownet.pkl", "contextnet.pkl", "unet.pkl"}
    for f in a:
        assert a[f].keys() == b[f].keys()
        assert all(torch.equal(a[f][k], b[f][k]) for k in a[f])
    key = "module.block0.conv0.0.weight"
    assert not torch.equal(a["flownet.pkl"][key], c["flownet.pkl"][key])
    for f, sd in a.items():
        for k, v in sd.items():
            if k.endswith("running_var"):
                assert float(v.min()) > 0, (f, k)
            if v.is_floating_point() and v.numel() > 1:
                assert float(v.std()) > 0, (f, k)  # PReLU / BN / beta not constant


@pytest.mark.parametrize("version", ref.REFERENCE_VERSIONS)
def test_layout_json_up_to_date(version: str) -> None:
    layout = json.loads((LAYOUTS / f"{version}.json").read_text())
    assert layout == ref.layout_of(version)
    assert list(layout) == list(ref.FILES[version])
    assert all(k.startswith("module.") for keys in layout.values() for k in keys)


def test_layout_counts() -> None:
    counts = {
        v: {f: len(keys) for f, keys in json.loads((LAYOUTS / f"{v}.json").read_text()).items()}
        for v in ("paper", "hd", "3.6", "4.26")
    }
    assert counts["3.6"] == {"flownet.pkl": 160}
    assert counts["paper"]["flownet.pkl"] == 190  # includes block_tea, contextnet, unet
    assert set(counts["hd"]) == {"flownet.pkl", "contextnet.pkl", "unet.pkl"}
    paper = json.loads((LAYOUTS / "paper.json").read_text())["flownet.pkl"]
    assert any(k.startswith("module.block_tea.") for k in paper)
    v426 = json.loads((LAYOUTS / "4.26.json").read_text())["flownet.pkl"]
    assert any(k.startswith("module.encode.") for k in v426)
    assert math.prod(v426["module.encode.cnn3.weight"]) == 16 * 4 * 4 * 4
