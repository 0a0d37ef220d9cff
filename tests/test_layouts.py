"""Our networks have exactly the official checkpoint layouts (key names and shapes, per file).

Ground truth: ``tests/data/layouts/<version>.json``, written from the official modules by
``tests/reference.py`` (keys carry the official ``module.`` prefix).
"""

from __future__ import annotations

import itertools
import json
import re
from pathlib import Path

import pytest

from vsrife.arch import build_network
from vsrife.models import MODELS, get_model, layout, list_models

try:
    from tests import reference as ref
except ImportError:  # tests/ is not a package: pytest puts tests/ itself on sys.path
    import reference as ref  # type: ignore[no-redef]

LAYOUTS = Path(__file__).resolve().parent / "data" / "layouts"
VERSIONS = sorted(p.name.removesuffix(".json") for p in LAYOUTS.glob("*.json"))


def _official(version: str) -> dict[str, dict[str, tuple[int, ...]]]:
    data = json.loads((LAYOUTS / f"{version}.json").read_text())
    out = {}
    for file_name, keys in data.items():
        assert all(k.startswith("module.") for k in keys), file_name
        out[file_name] = {k.removeprefix("module."): tuple(shape) for k, shape in keys.items()}
    return out


def test_layout_files_present() -> None:
    assert len(VERSIONS) == 40
    for v in ("paper", "hd", "hdv2", "3.6", "4.0", "4.12.lite", "4.25.lite", "4.26.heavy"):
        assert v in VERSIONS


@pytest.mark.parametrize("version", VERSIONS)
def test_layout_matches_official(version: str) -> None:
    official = _official(version)
    has_teacher = any(k.startswith("block_tea.") for keys in official.values() for k in keys)
    spec = get_model(version).spec
    assert spec.teacher == has_teacher
    assert [name for name, _ in spec.files] == list(official)
    ours = layout(spec, teacher=has_teacher)
    assert list(ours) == list(official)
    for file_name, expected in official.items():
        got = ours[file_name]
        missing = sorted(set(expected) - set(got))
        unexpected = sorted(set(got) - set(expected))
        shapes = {k: (got[k], expected[k]) for k in expected if k in got and got[k] != expected[k]}
        assert not missing, f"{version}/{file_name}: missing {missing[:8]}"
        assert not unexpected, f"{version}/{file_name}: unexpected {unexpected[:8]}"
        assert not shapes, f"{version}/{file_name}: shapes (ours, official) {dict(list(shapes.items())[:8])}"
    if has_teacher:
        # the inference layout is the official one without the privileged teacher
        student = {f: {k: s for k, s in keys.items() if not k.startswith("block_tea.")} for f, keys in official.items()}
        assert layout(spec) == student


def test_teacher_only_where_official() -> None:
    with pytest.raises(ValueError, match="teacher"):
        build_network(get_model("4.6").spec, teacher=True)
    with pytest.raises(ValueError, match="teacher"):
        build_network(get_model("hd").spec, teacher=True)


def test_every_registry_entry_has_a_layout() -> None:
    names = [m.name for m in list_models()]
    assert len(names) == len(set(names))
    assert set(names) == set(MODELS) == set(VERSIONS)
    assert set(ref.REFERENCE_VERSIONS) == set(VERSIONS)


_VERSION_TEXT = re.compile(r"v4[._]\d+(?:[._](?:lite|heavy))?")


def _architecture_key(version: str) -> str:
    """What decides the computation: the official module source (version names blanked) and padding."""
    if not ref.is_v4(version):
        return version  # paper, HD, HD v2 and v3.6 are four different networks
    source = (ref.reference_root() / "ref_vsrife" / f"{ref.v4_module_name(version)}.py").read_text()
    return f"{_VERSION_TEXT.sub('v4.X', source)}\nmodulo={ref.pad_modulus(version)}"


def test_identical_architectures_share_a_spec() -> None:
    """Versions whose official code is identical share one ArchSpec object; different code, different spec."""
    keys = {v: _architecture_key(v) for v in VERSIONS}
    # sanity of the ground truth: retrained releases really share code, the lite/heavy variants do not
    assert keys["4.13"] == keys["4.14"] == keys["4.24"]
    assert keys["4.21"] == keys["4.22"] == keys["4.23"]
    assert keys["4.25"] == keys["4.26"]
    assert keys["4.25"] != keys["4.25.lite"] != keys["4.25.heavy"]
    wrong = []
    for a, b in itertools.combinations(VERSIONS, 2):
        sa, sb = get_model(a).spec, get_model(b).spec
        same = keys[a] == keys[b]
        if (sa is sb) != same or (sa == sb) != same:
            wrong.append(
                f"{a}/{b}: official code {'same' if same else 'differs'}, spec {'shared' if sa is sb else 'own'}"
            )
    assert not wrong, wrong
    groups = {get_model(v).spec for v in VERSIONS}
    assert len(groups) == len(set(keys.values()))
