"""Checkpoint loading: strict layouts, clear errors, safe unpickling, version inference, metadata."""

from __future__ import annotations

import dataclasses
import functools
import json
import pickle
import random
import shutil
from pathlib import Path

import pytest
import torch
from helpers.checkpoints import seeded_checkpoint
from torch import Tensor

from vsrife.arch import build_network
from vsrife.engine import Interpolator
from vsrife.models import ModelLoadError, get_model, infer_model, layout, list_models, load_model, read_state_dict
from vsrife.models.loading import METADATA_KEY, TRAINING_ONLY, spec_to_dict

LAYOUTS = Path(__file__).resolve().parent / "data" / "layouts"
VERSIONS = sorted(p.name.removesuffix(".json") for p in LAYOUTS.glob("*.json"))

pytestmark = pytest.mark.usefixtures("single_thread")


@functools.lru_cache(maxsize=8)
def _cached_weights(version: str) -> dict[str, dict[str, Tensor]]:
    gen = torch.Generator().manual_seed(0)
    out = {}
    for file_name, keys in json.loads((LAYOUTS / f"{version}.json").read_text()).items():
        out[file_name] = {
            k: torch.zeros((), dtype=torch.long)
            if k.endswith("num_batches_tracked")
            else torch.randn(shape, generator=gen)
            for k, shape in keys.items()
        }
    return out


def _weights(version: str) -> dict[str, dict[str, Tensor]]:
    """Random weights in the official layout (``module.`` keys, as saved); loading only looks at the layout."""
    return {f: dict(sd) for f, sd in _cached_weights(version).items()}


def _save(state_dicts: dict[str, dict[str, Tensor]], folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, sd in state_dicts.items():
        torch.save(sd, folder / name)
    return folder


def _assert_loaded(loaded_state: dict[str, Tensor], official: dict[str, Tensor], prefix: str = "flownet.") -> None:
    """Every inference tensor of the official file arrived, unchanged, under ``prefix``."""
    for key, value in official.items():
        key = key.removeprefix("module.")
        if key.startswith(TRAINING_ONLY):
            continue
        assert torch.equal(loaded_state[prefix + key], value), key


@pytest.fixture(scope="module")
def v46(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _save(_weights("4.6"), tmp_path_factory.mktemp("v46")) / "flownet.pkl"


# --- unreadable files -------------------------------------------------------------------------------


def _empty(path: Path, good: Path) -> None:
    path.write_bytes(b"")


def _truncated(path: Path, good: Path) -> None:
    data = good.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _truncated_legacy(path: Path, good: Path) -> None:  # the pre-zip format torch.save wrote before 1.6
    import io

    buffer = io.BytesIO()
    torch.save(torch.load(good, weights_only=True), buffer, _use_new_zipfile_serialization=False)
    path.write_bytes(buffer.getvalue()[:100])


def _pickle_header_only(path: Path, good: Path) -> None:  # an EOFError without a message (was an IndexError)
    path.write_bytes(b"\x80\x02")


def _random_bytes(path: Path, good: Path) -> None:
    path.write_bytes(random.Random(1).randbytes(4096))


def _text(path: Path, good: Path) -> None:
    path.write_text("<html><body>404 Not Found</body></html>\n")


def _list_pickle(path: Path, good: Path) -> None:
    torch.save([torch.zeros(3), torch.ones(3)], path)


def _tensor_pickle(path: Path, good: Path) -> None:
    torch.save(torch.zeros(3), path)


def _non_tensor_values(path: Path, good: Path) -> None:
    torch.save({"module.block0.conv0.0.0.weight": [1, 2, 3], "epoch": 7}, path)


BAD_FILES = {
    "empty": (_empty, "empty"),
    "truncated": (_truncated, "truncated"),
    "truncated-legacy": (_truncated_legacy, "cannot be read"),
    "pickle-header-only": (_pickle_header_only, r"cannot be read \(truncated, or not a PyTorch checkpoint\)"),
    "random-bytes": (_random_bytes, "PyTorch checkpoint|state dict"),
    "text": (_text, "PyTorch checkpoint|state dict"),
    "pickled-list": (_list_pickle, r"not a state dict \(found list\)"),
    "pickled-tensor": (_tensor_pickle, r"not a state dict \(found Tensor\)"),
    "non-tensor-values": (_non_tensor_values, "non-tensor entries"),
}


@pytest.mark.parametrize("case", list(BAD_FILES))
@pytest.mark.parametrize("model", ["4.6", None])
def test_unreadable_file(case: str, model: str | None, v46: Path, tmp_path: Path) -> None:
    make, what = BAD_FILES[case]
    path = tmp_path / "flownet.pkl"
    make(path, v46)
    with pytest.raises(ModelLoadError, match=what) as info:
        load_model(model, model_path=path)
    message = str(info.value)
    assert str(path) in message
    if model is not None:
        assert "'4.6'" in message and "v4" in message  # the version / family it was loaded as
    with pytest.raises(ModelLoadError, match=what):
        read_state_dict(path)


def test_missing_path(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="does not exist") as info:
        load_model("4.6", model_path=tmp_path / "nope.pkl")
    assert str(tmp_path / "nope.pkl") in str(info.value)


# --- layout mismatches ------------------------------------------------------------------------------


def test_wrong_version(v46: Path, tmp_path: Path) -> None:
    """A 4.6 file loaded as 4.25: names the file, the version/family and the first offending keys."""
    with pytest.raises(ModelLoadError) as info:
        load_model("4.25", model_path=v46)
    message = str(info.value)
    assert str(v46) in message
    assert "'4.25'" in message and "family v4" in message
    official_25 = json.loads((LAYOUTS / "4.25.json").read_text())["flownet.pkl"]
    official_46 = json.loads((LAYOUTS / "4.6.json").read_text())["flownet.pkl"]
    missing = [k.removeprefix("module.") for k in official_25 if k not in official_46]
    unexpected = [k.removeprefix("module.") for k in official_46 if k not in official_25]
    reshaped = [k.removeprefix("module.") for k in official_25 if k in official_46 and official_25[k] != official_46[k]]
    assert missing and reshaped and not unexpected  # 4.6's keys are a subset of 4.25's (block0-3)
    assert f"{len(missing)} missing keys" in message and missing[0] in message
    assert f"{len(reshaped)} wrong shapes" in message and reshaped[0] in message
    # and the other way round: 4.25 tensors loaded as 4.6 are unexpected there
    v425 = tmp_path / "v425"
    _save(_weights("4.25"), v425)
    with pytest.raises(ModelLoadError) as info:
        load_model("4.6", model_path=v425)
    message = str(info.value)
    assert str(v425 / "flownet.pkl") in message and "'4.6'" in message
    assert f"{len(missing)} unexpected keys" in message and missing[0] in message


def test_wrong_shape(tmp_path: Path) -> None:
    sd = dict(_weights("4.6")["flownet.pkl"])
    key = "module.block2.convblock.3.conv.weight"
    expected = tuple(sd[key].shape)
    sd[key] = torch.zeros(expected[0], expected[1], 5, 5)
    path = _save({"flownet.pkl": sd}, tmp_path) / "flownet.pkl"
    with pytest.raises(ModelLoadError) as info:
        load_model("4.6", model_path=path)
    message = str(info.value)
    assert str(path) in message and "'4.6'" in message
    assert "1 wrong shapes" in message
    assert f"block2.convblock.3.conv.weight {(*expected[:2], 5, 5)} (expected {expected})" in message
    assert "missing" not in message and "unexpected" not in message


def test_extra_unknown_keys(tmp_path: Path) -> None:
    sd = dict(_weights("4.6")["flownet.pkl"])
    sd["module.block4.conv0.0.0.weight"] = torch.zeros(8, 8, 3, 3)
    sd["module.optimizer_step"] = torch.tensor(3)
    path = _save({"flownet.pkl": sd}, tmp_path) / "flownet.pkl"
    with pytest.raises(ModelLoadError, match="2 unexpected keys") as info:
        load_model("4.6", model_path=path)
    message = str(info.value)
    assert str(path) in message and "block4.conv0.0.0.weight" in message and "optimizer_step" in message


def test_missing_key(tmp_path: Path) -> None:
    sd = dict(_weights("4.6")["flownet.pkl"])
    del sd["module.block3.lastconv.0.bias"]
    path = _save({"flownet.pkl": sd}, tmp_path) / "flownet.pkl"
    with pytest.raises(ModelLoadError, match=r"1 missing keys, e\.g\. block3\.lastconv\.0\.bias"):
        load_model("4.6", model_path=path)


# --- training-only extras -----------------------------------------------------------------------------


def test_v36_teacher_block_is_ignored_or_loaded(tmp_path: Path) -> None:
    sd = _weights("3.6")["flownet.pkl"]
    assert any(k.startswith("module.block_tea.") for k in sd)  # as in the official file
    path = _save({"flownet.pkl": sd}, tmp_path) / "flownet.pkl"
    loaded = load_model("3.6", model_path=path)
    state = loaded.network.state_dict()
    assert not any("block_tea" in k for k in state)
    _assert_loaded(state, sd)
    with_teacher = load_model("3.6", model_path=path, teacher=True).network.state_dict()
    tea = {k: v for k, v in sd.items() if k.startswith("module.block_tea.")}
    assert tea and all(torch.equal(with_teacher["flownet." + k.removeprefix("module.")], v) for k, v in tea.items())


def test_v4_teacher_and_caltime_are_ignored(tmp_path: Path) -> None:
    sd = dict(_weights("4.18")["flownet.pkl"])
    # Practical-RIFE training checkpoints: a privileged teacher IFBlock and a timestep calibration net
    sd["module.teacher.conv0.0.0.weight"] = torch.randn(96, 31, 3, 3)
    sd["module.teacher.lastconv.0.weight"] = torch.randn(96, 24, 4, 4)
    sd["module.caltime.0.weight"] = torch.randn(32, 17, 3, 3)
    sd["module.caltime.0.bias"] = torch.randn(32)
    path = _save({"flownet.pkl": sd}, tmp_path) / "flownet.pkl"
    loaded = load_model("4.18", model_path=path)
    state = loaded.network.state_dict()
    assert not any("teacher" in k or "caltime" in k for k in state)
    _assert_loaded(state, sd)
    # and inference of the version still works with the extras present
    assert load_model(model_path=path).info.spec is get_model("4.18").spec


# tensors of the 3.x refinement nets that the 4.0-4.4 IFNet still built (vs-rife and ComfyUI's strict loader
# show them in those files; shapes as Practical-RIFE's refine.py with c = 16)
_REFINE_NETS = {
    "module.contextnet.conv1.conv1.0.weight": (16, 3, 3, 3),
    "module.contextnet.conv1.conv1.1.weight": (16,),
    "module.contextnet.conv4.conv2.0.weight": (128, 128, 3, 3),
    "module.unet.down0.conv1.0.weight": (32, 17, 3, 3),
    "module.unet.up3.0.weight": (32, 16, 4, 4),
    "module.unet.conv.weight": (3, 16, 3, 3),
}


@pytest.mark.parametrize("version", ["4.0", "4.3"])
def test_v40_to_v44_files_with_their_unused_refinement_nets_load(version: str, tmp_path: Path) -> None:
    sd = dict(_weights(version)["flownet.pkl"])
    sd |= {k: torch.randn(shape) for k, shape in _REFINE_NETS.items()}
    sd["module.unet.conv.bias"] = torch.full((3,), float("nan"))  # unused: even an unusable value is no error
    path = _save({"flownet.pkl": sd}, tmp_path) / "flownet.pkl"
    loaded = load_model(version, model_path=path)
    state = loaded.network.state_dict()
    assert not any("contextnet" in k or "unet" in k for k in state)
    _assert_loaded(state, {k: v for k, v in sd.items() if "contextnet" not in k and "unet" not in k})
    assert load_model(model_path=path).info.spec is get_model(version).spec  # inferred with them present
    # versions whose files never had them still refuse them: a mix-up, not an official file
    sd46 = dict(_weights("4.6")["flownet.pkl"]) | {k: torch.randn(s) for k, s in _REFINE_NETS.items()}
    path46 = _save({"flownet.pkl": sd46}, tmp_path / "46") / "flownet.pkl"
    with pytest.raises(ModelLoadError, match=r"6 unexpected keys, e\.g\. contextnet\.conv1\.conv1\.0\.weight"):
        load_model("4.6", model_path=path46)


# --- model_path forms ---------------------------------------------------------------------------------


def test_model_path_file_or_folder(v46: Path, tmp_path: Path) -> None:
    official = _weights("4.6")["flownet.pkl"]
    for target in (v46, v46.parent, str(v46)):
        loaded = load_model("4.6", model_path=target)
        assert loaded.paths == [v46]
        _assert_loaded(loaded.network.state_dict(), official)
    # a folder with one differently named checkpoint
    other = tmp_path / "single"
    other.mkdir()
    shutil.copy(v46, other / "rife46.pth")
    assert load_model("4.6", model_path=other).paths == [other / "rife46.pth"]
    # ... but not with two of them
    shutil.copy(v46, other / "rife46-copy.pkl")
    with pytest.raises(ModelLoadError, match=r"without flownet\.pkl") as info:
        load_model("4.6", model_path=other)
    assert "rife46.pth" in str(info.value) and "rife46-copy.pkl" in str(info.value)


@pytest.mark.parametrize("version", ["hd", "hdv2"])
def test_three_file_folders(version: str, tmp_path: Path) -> None:
    sds = _weights(version)
    folder = _save(sds, tmp_path / version)
    for loaded in (load_model(version, model_path=folder), load_model(model_path=folder)):
        assert loaded.name == version
        assert sorted(p.name for p in loaded.paths) == ["contextnet.pkl", "flownet.pkl", "unet.pkl"]
        state = loaded.network.state_dict()
        for file_name, prefix in (
            ("flownet.pkl", "flownet."),
            ("contextnet.pkl", "contextnet."),
            ("unet.pkl", "fusionnet."),
        ):
            _assert_loaded(state, sds[file_name], prefix)
    # the flownet file alone, with its siblings beside it
    assert load_model(version, model_path=folder / "flownet.pkl").name == version
    (folder / "unet.pkl").unlink()
    with pytest.raises(ModelLoadError, match=r"unet\.pkl") as info:
        load_model(version, model_path=folder)
    assert str(folder / "flownet.pkl") in str(info.value)
    # a wrong sibling is named as such
    torch.save(sds["contextnet.pkl"], folder / "unet.pkl")
    with pytest.raises(ModelLoadError) as info:
        load_model(version, model_path=folder)
    assert str(folder / "unet.pkl") in str(info.value) and f"'{version}'" in str(info.value)


# --- version inference --------------------------------------------------------------------------------


def _meta_states(version: str) -> dict[str, dict[str, Tensor]]:
    data = json.loads((LAYOUTS / f"{version}.json").read_text())
    return {
        f: {k.removeprefix("module."): torch.empty(shape, device="meta") for k, shape in keys.items()}
        for f, keys in data.items()
    }


@pytest.mark.parametrize("version", VERSIONS)
def test_infer_every_official_layout(version: str) -> None:
    info, equivalent = infer_model(_meta_states(version), "test")
    spec = get_model(version).spec
    assert info.spec is spec
    assert version in equivalent
    assert equivalent == [m.name for m in list_models() if m.spec is spec]


def test_infer_from_files(tmp_path: Path) -> None:
    v414 = _save(_weights("4.14"), tmp_path / "414")
    loaded = load_model(model_path=v414)
    assert loaded.info.spec is get_model("4.13").spec
    assert "4.14" in loaded.equivalent and "4.13" in loaded.equivalent and "4.14.lite" not in loaded.equivalent

    lite = _save(_weights("4.25.lite"), tmp_path / "425lite")
    loaded = load_model(model_path=lite / "flownet.pkl")
    assert loaded.name == "4.25.lite" and loaded.equivalent == ["4.25.lite"]
    assert loaded.info.spec.modulus == 128

    v425 = _save(_weights("4.25"), tmp_path / "425")
    loaded = load_model(model_path=v425)
    assert loaded.name in ("4.25", "4.26") and sorted(loaded.equivalent) == ["4.25", "4.26"]
    # one network, several versions: the file's name says which (messages named 4.26 for flownet_v4.25.pkl)
    newest = loaded.name
    for folder, file_name, name in (
        (v425, "flownet_v4.25.pkl", "4.25"),
        (v425, "rife-4.26.pth", "4.26"),
        (v414, "flownet_v4.15.pkl", "4.15"),
        (v425, "flownet_v4.2.pkl", newest),  # no version of this network: the newest
    ):
        (tmp_path / file_name).write_bytes((folder / "flownet.pkl").read_bytes())
        assert load_model(model_path=tmp_path / file_name).name == name, file_name

    paper = _save(_weights("paper"), tmp_path / "paper")  # carries block_tea, like the official file
    assert load_model(model_path=paper).name == "paper"


def test_infer_unknown_layout(tmp_path: Path) -> None:
    sd = dict(_weights("4.6")["flownet.pkl"])
    del sd["module.block0.conv0.0.0.weight"]
    path = _save({"flownet.pkl": sd}, tmp_path) / "flownet.pkl"
    with pytest.raises(ModelLoadError, match="matches no known RIFE layout") as info:
        load_model(model_path=path)
    assert str(path) in str(info.value) and "model=" in str(info.value)


# --- unpickling safety --------------------------------------------------------------------------------


class _Payload:
    """Unpickling this (if allowed) creates a file: proof that code from the checkpoint ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return (open, (str(self.marker), "w"))


@pytest.mark.parametrize("fmt", ["torch-zip", "legacy-pickle"])
def test_arbitrary_objects_are_refused(fmt: str, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "flownet.pkl"
    sd: dict[str, object] = dict(_weights("4.6")["flownet.pkl"])
    sd["module.payload"] = _Payload(marker)
    if fmt == "torch-zip":
        torch.save(sd, path)
    else:
        with path.open("wb") as fh:
            pickle.dump({"module.payload": _Payload(marker)}, fh, protocol=2)
    for model in ("4.6", None):
        with pytest.raises(ModelLoadError, match="state dict") as info:
            load_model(model, model_path=path)
        assert str(path) in str(info.value)
        assert not marker.exists(), "the checkpoint's pickled code was executed"


@pytest.mark.parametrize("damage", ["nan", "inf", "int"])
def test_unusable_values_are_refused(damage: str, tmp_path: Path) -> None:
    """Right keys and shapes, but weights that would render garbage (black frames): refused, naming the file."""
    path = seeded_checkpoint("4.6", tmp_path)
    sd = torch.load(path, weights_only=True)
    key = "module.block0.convblock.3.conv.weight"
    if damage == "int":
        sd = {k: v.to(torch.int64) for k, v in sd.items()}
    else:
        sd[key] = sd[key].clone()
        sd[key][0, 0, 0, 0] = float(damage)
    torch.save(sd, path)
    expected = "not floating point" if damage == "int" else "NaN or infinite values"
    for model in ("4.6", None):
        with pytest.raises(ModelLoadError, match=expected) as info:
            load_model(model, model_path=path)
        assert str(path) in str(info.value)
    if damage != "int":
        assert "block0.convblock.3.conv.weight" in str(info.value)


# --- vsrife metadata ----------------------------------------------------------------------------------


@pytest.fixture
def tiny_checkpoint(tmp_path: Path) -> tuple[Path, dict[str, Tensor], object]:
    spec = dataclasses.replace(get_model("4.13").spec, widths=(48, 32, 24, 16), encoder_width=8, encoder_channels=4)
    torch.manual_seed(0)
    net = build_network(spec)
    sd: dict[str, object] = {f"module.{k}": v for k, v in net.flownet.state_dict().items()}
    sd[METADATA_KEY] = json.dumps({"spec": spec_to_dict(spec), "name": "tiny", "summary": "test model"})
    path = tmp_path / "tiny.pkl"
    torch.save(sd, path)
    return path, net.flownet.state_dict(), spec


def test_metadata_spec_loads_custom_architecture(tiny_checkpoint: tuple[Path, dict[str, Tensor], object]) -> None:
    path, weights, spec = tiny_checkpoint
    loaded = load_model(model_path=path)
    assert loaded.info.spec == spec and loaded.name == "tiny"
    assert loaded.metadata["name"] == "tiny"
    state = loaded.network.flownet.state_dict()
    assert state.keys() == weights.keys() and all(torch.equal(state[k], v) for k, v in weights.items())
    assert layout(spec)["flownet.pkl"] == {k: tuple(v.shape) for k, v in weights.items()}
    img = torch.rand(1, 3, 40, 52, generator=torch.Generator().manual_seed(0))
    out = Interpolator(loaded, device="cpu", precision="fp32").interpolate(img, img.flip(3), 0.25)
    assert out.shape == img.shape and torch.isfinite(out).all()


def test_metadata_errors(tiny_checkpoint: tuple[Path, dict[str, Tensor], object], tmp_path: Path) -> None:
    path, _, spec = tiny_checkpoint
    raw = torch.load(path, weights_only=True)
    # without metadata the custom layout matches no official version
    plain = {k: v for k, v in raw.items() if k != METADATA_KEY}
    torch.save(plain, tmp_path / "plain.pkl")
    with pytest.raises(ModelLoadError, match="matches no known RIFE layout"):
        load_model(model_path=tmp_path / "plain.pkl")
    # metadata whose spec does not fit the tensors
    wrong = dict(plain)
    wrong[METADATA_KEY] = json.dumps({"spec": spec_to_dict(get_model("4.13").spec), "name": "liar"})
    torch.save(wrong, tmp_path / "wrong.pkl")
    with pytest.raises(ModelLoadError, match="wrong shapes") as info:
        load_model(model_path=tmp_path / "wrong.pkl")
    assert str(tmp_path / "wrong.pkl") in str(info.value) and "'liar'" in str(info.value)
    # unknown fields and corrupt JSON
    bad_field = dict(plain)
    bad_field[METADATA_KEY] = json.dumps({"spec": {**spec_to_dict(spec), "attention": True}})
    torch.save(bad_field, tmp_path / "field.pkl")
    with pytest.raises(ModelLoadError, match="attention"):
        load_model(model_path=tmp_path / "field.pkl")
    impossible = dict(plain)
    impossible[METADATA_KEY] = json.dumps({"spec": {**spec_to_dict(spec), "corr_radius": -2}})
    torch.save(impossible, tmp_path / "impossible.pkl")
    with pytest.raises(ModelLoadError, match="invalid network: corr_radius must be >= 0") as info:
        load_model(model_path=tmp_path / "impossible.pkl")
    assert str(tmp_path / "impossible.pkl") in str(info.value)
    # a spec that builds but cannot run (flow at scale 0), missing fields, the wrong JSON types
    for name, meta in (
        ("scale0", {"spec": {**spec_to_dict(spec), "scales": [0, 0, 0, 0]}}),
        ("nofield", {"spec": {k: v for k, v in spec_to_dict(spec).items() if k != "scales"}}),
        ("listspec", {"spec": [1, 2]}),
        ("listmeta", [1, 2]),
    ):
        broken = dict(plain)
        broken[METADATA_KEY] = json.dumps(meta)
        torch.save(broken, tmp_path / f"{name}.pkl")
        with pytest.raises(ModelLoadError, match="metadata") as info:
            load_model(model_path=tmp_path / f"{name}.pkl")
        assert str(tmp_path / f"{name}.pkl") in str(info.value)
    corrupt = dict(plain)
    corrupt[METADATA_KEY] = "{not json"
    torch.save(corrupt, tmp_path / "corrupt.pkl")
    with pytest.raises(ModelLoadError, match="corrupt vsrife metadata") as info:
        load_model(model_path=tmp_path / "corrupt.pkl")
    assert str(tmp_path / "corrupt.pkl") in str(info.value)


def test_a_version_name_does_not_override_a_recorded_architecture(tmp_path: Path) -> None:
    """A vsrife-trained file with 4.6's tensors but other scales: loading it "as 4.6" (or importing it into
    the store as 4.6) would run it with 4.6's scales without a word; both are refused, naming the field."""
    from vsrife.models.store import import_file

    spec = dataclasses.replace(get_model("4.6").spec, scales=(16, 8, 4, 2))
    torch.manual_seed(0)
    net = build_network(spec)
    sd: dict[str, object] = {f"module.{k}": v for k, v in net.flownet.state_dict().items()}
    sd[METADATA_KEY] = json.dumps({"spec": spec_to_dict(spec), "name": "my-finetune"})
    path = tmp_path / "flownet.pkl"
    torch.save(sd, path)
    assert load_model(model_path=path).info.spec.scales == (16, 8, 4, 2)  # its own record
    with pytest.raises(ModelLoadError, match=r"trained as 'my-finetune'.*scales \(16, 8, 4, 2\) \(model '4\.6'"):
        load_model("4.6", model_path=path)
    with pytest.raises(ModelLoadError, match="trained as 'my-finetune'"):
        import_file(path, "4.6", tmp_path / "store")
    assert not list((tmp_path / "store").rglob("*.pkl"))
    # the same architecture recorded (a fine-tuned 4.6) loads under the version's name as before
    same = dict(sd)
    same[METADATA_KEY] = json.dumps({"spec": spec_to_dict(get_model("4.6").spec), "name": "tuned-4.6"})
    torch.save(same, tmp_path / "tuned.pkl")
    assert load_model("4.6", model_path=tmp_path / "tuned.pkl").info.name == "4.6"


def test_files_beside_a_renamed_checkpoint_are_not_read(v46: Path, tmp_path: Path) -> None:
    """contextnet.pkl / unet.pkl belong to the flownet.pkl of an HD release: beside a checkpoint of another
    name (a download saved as rife46.pkl) they are someone else's and must not be read."""
    folder = tmp_path / "downloads"
    folder.mkdir()
    shutil.copy(v46, folder / "rife46.pkl")
    (folder / "contextnet.pkl").write_bytes(b"not a checkpoint")
    torch.save({"module.x": torch.zeros(1)}, folder / "unet.pkl")
    for model in (None, "4.6"):
        loaded = load_model(model, model_path=folder / "rife46.pkl")
        assert loaded.name == "4.6" and loaded.paths == [folder / "rife46.pkl"]


def test_an_exported_fine_tune_without_its_teacher_block_loads_as_its_version(tmp_path: Path) -> None:
    """Whether block_tea was stored (training only) is no architecture difference: a v3.6 fine-tune exported
    without it still loads under "3.6"."""
    from vsrife.train.export import export_model

    net = build_network(get_model("3.6").spec, teacher=True)
    export_model(net, tmp_path / "tuned", name="tuned-3.6", include_teacher=False)
    loaded = load_model("3.6", model_path=tmp_path / "tuned")
    assert loaded.name == "3.6"
    assert torch.equal(loaded.network.state_dict()["flownet.block0.conv0.0.0.weight"],
                       net.state_dict()["flownet.block0.conv0.0.0.weight"])  # fmt: skip
