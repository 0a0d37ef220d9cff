"""Training configuration: one dataclass, read from JSON/TOML files and command-line flags.

Every option is a field of :class:`TrainConfig`. Files may be flat or grouped in tables
(``[optim]``, ``[data]``...; the table names are only for readability). :meth:`TrainConfig.validate`
raises :class:`ConfigError` naming the offending option.
"""

from __future__ import annotations

import argparse
import json
import math
import tomllib
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

__all__ = ["ConfigError", "TrainConfig", "add_config_arguments", "config_from_args", "load_config_file"]

AMP_MODES = ("none", "bf16", "fp16")
DEFAULT_TEACHER_WIDTH = 64
"""Width of a new privileged 4.x teacher when neither the option nor the source model gives one."""
MIN_WIDTH = 2
"""Narrowest IFBlock: its first convolution has width // 2 channels (the architecture's own check agrees)."""
TEACHERS = ("none", "dis", "raft", "privileged")
DIS_PRESETS = ("ultrafast", "fast", "medium")


HELP = {
    "out_dir": "run folder: config.json, train.csv, val.csv, log.txt, checkpoints/, samples/, model/",
    "overwrite": "let a new run replace an earlier run's outputs (config.json, logs, samples, model/) in out_dir",
    "seed": "seed of initialisation, data order and augmentation",
    "device": "auto, cpu, cuda or cuda:N (under torchrun: each process's own GPU)",
    "threads": "torch CPU threads (0: torch's default)",
    "steps": "optimizer steps of the whole run (the cosine schedule ends there)",
    "batch_size": "global batch size (split over torchrun processes)",
    "resume": "continue from the newest checkpoint in out_dir (starts fresh when there is none); the network "
    "comes from the checkpoint, model / model_path need not exist any more",
    "time_limit": "stop (with a checkpoint) after this many seconds of this process (0: no limit)",
    "model": "registered version to fine-tune (3.6, 4.6, ...)",
    "model_path": "checkpoint file/folder to fine-tune (official or exported by vsrife)",
    "arch": 'train from scratch: ArchSpec fields as JSON over arch_base, e.g. {"widths": [64, 48, 32]}',
    "arch_base": "registered version whose architecture arch modifies",
    "name": "model name written into the exported checkpoint",
    "data": "sources: vimeo-triplet:DIR vimeo-septuplet:DIR frames:DIR video:FILE[@scale] sample:NAME synthetic:N "
    "(frames:DIR in natural order: 2.png before 10.png)",
    "windows": "window lengths k (I0 = first, I1 = last, It inner, t = j/(k-1)); odd only for paper/v3",
    "crop": "training crop: SIZE or HEIGHT WIDTH (a multiple of the architecture's padding)",
    "video_scale": "downscale factor for decoded videos",
    "max_frames": "decode at most this many frames per video (0: all)",
    "val_fraction": "share of the windows held out for validation: whole segments, chosen by hash across all "
    "clips (Vimeo: whole sequences)",
    "val_segment": "segment length (frames) of the hash split of clips",
    "skip_bad": "drop windows with duplicates (> 48 dB) or cuts (< 16 dB) between neighbours",
    "flip_h": "probability of a horizontal flip",
    "flip_v": "probability of a vertical flip",
    "rot90": "probability of a rotation (90/180/270 degrees; 180 only for non-square crops)",
    "channel_perm": "probability of a random RGB channel permutation",
    "reverse": "probability of temporal reversal (I0 <-> I1, t -> 1 - t)",
    "pan": "probability of a camera pan: the crop moves by a whole number of pixels per frame",
    "pan_pixels": "largest pan step (pixels per source frame, each axis)",
    "num_workers": "DataLoader worker processes (0: load in the training process)",
    "lr": "peak learning rate (AdamW)",
    "min_lr": "learning rate at the end of the cosine decay",
    "warmup": "linear warm-up steps",
    "weight_decay": "AdamW weight decay",
    "betas": "AdamW betas",
    "grad_clip": "clip the gradient norm to this value (0: off)",
    "amp": "autocast: none, bf16 or fp16 (fp16 with a grad scaler, CUDA only)",
    "teacher": "distillation teacher: none, dis (OpenCV), raft (torchvision), privileged (trained jointly)",
    "distill_weight": "weight of the distillation loss",
    "distill_norm": "flow distance per pixel: rms (official code), l1 or epe",
    "distill_mask": "better: only where the teacher's warp beats the student's by 0.01; all: everywhere",
    "teacher_weight": "weight of the privileged teacher's reconstruction loss",
    "lap_levels": "Laplacian pyramid levels of the reconstruction loss",
    "lap_lowpass": "also compare the pyramid's low-pass residual (not in the official LapLoss)",
    "dis_preset": "DIS preset: ultrafast, fast or medium",
    "raft_weights": "torchvision RAFT state-dict file (teacher raft)",
    "raft_small": "the weights are raft_small (else raft_large)",
    "raft_iters": "RAFT refinement iterations",
    "teacher_width": "width of the privileged teacher block added to 4.x networks, >= 2 (default: the width of "
    "the teacher in the model fine-tuned, or in the checkpoint resumed; else 64)",
    "log_every": "steps per train.csv row (averaged over the window)",
    "val_every": "steps between validations (val.csv)",
    "val_max": "held-out frames scored per validation, spread evenly (0: no validation)",
    "val_crop": "centre crop for validation (default: full frames)",
    "ckpt_every": "steps between checkpoints",
    "keep_checkpoints": "checkpoints kept in out_dir/checkpoints",
    "sample_every": "steps between PNG sample grids (I0, It, prediction, I1, error, teacher)",
    "tensorboard": "also log to TensorBoard (a warning in the log when it is not installed)",
    "export_final": "export the final model to out_dir/model (official layout + metadata)",
}


class ConfigError(ValueError):
    """A configuration value is invalid; the message starts with the option's name."""


@dataclass
class TrainConfig:
    """All options of a training run (see ``python -m vsrife.train fit --help``)."""

    # --- run
    out_dir: str = "runs/rife"
    overwrite: bool = False
    seed: int = 1234
    device: str = "auto"
    threads: int = 0
    steps: int = 1000
    batch_size: int = 8
    resume: bool = False
    time_limit: float = 0.0
    # --- model: exactly one of model / model_path / arch
    model: str | None = None
    model_path: str | None = None
    arch: dict[str, Any] | None = None
    arch_base: str = "4.6"
    name: str = "custom"
    # --- data
    data: list[str] = field(default_factory=lambda: ["sample:bikes"])
    windows: list[int] = field(default_factory=lambda: [3])
    crop: list[int] = field(default_factory=lambda: [256, 256])
    video_scale: float = 1.0
    max_frames: int = 0
    val_fraction: float = 0.1
    val_segment: int = 16
    skip_bad: bool = True
    flip_h: float = 0.5
    flip_v: float = 0.5
    rot90: float = 0.5
    channel_perm: float = 0.5
    reverse: float = 0.5
    pan: float = 0.0
    pan_pixels: int = 3
    num_workers: int = 0
    # --- optimisation
    lr: float = 3e-4
    min_lr: float = 3e-6
    warmup: int = 200
    weight_decay: float = 1e-3
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    grad_clip: float = 1.0
    amp: str = "none"
    # --- losses
    teacher: str = "none"
    distill_weight: float = 0.01
    distill_norm: str = "rms"
    distill_mask: str = "better"
    teacher_weight: float = 1.0
    lap_levels: int = 5
    lap_lowpass: bool = False
    dis_preset: str = "medium"
    raft_weights: str | None = None
    raft_small: bool = False
    raft_iters: int = 12
    teacher_width: int | None = None
    # --- logging, validation, checkpoints
    log_every: int = 10
    val_every: int = 500
    val_max: int = 64
    val_crop: list[int] | None = None
    ckpt_every: int = 500
    keep_checkpoints: int = 3
    sample_every: int = 500
    tensorboard: bool = True
    export_final: bool = True

    # ------------------------------------------------------------------ helpers
    @property
    def crop_hw(self) -> tuple[int, int]:
        return int(self.crop[0]), int(self.crop[-1])

    @property
    def val_crop_hw(self) -> tuple[int, int] | None:
        return None if not self.val_crop else (int(self.val_crop[0]), int(self.val_crop[-1]))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any], origin: str = "config") -> TrainConfig:
        """Build from a (possibly table-grouped) mapping; unknown keys are an error."""
        flat = _flatten(data, origin)
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(flat) - names)
        if unknown:
            raise ConfigError(f"{unknown[0]}: unknown option in {origin} (known: {', '.join(sorted(names))})")
        cfg = cls(**flat)
        return cfg.validate()

    def replace(self, **changes: Any) -> TrainConfig:
        data = self.to_dict()
        data.update(changes)
        return TrainConfig.from_dict(data)

    def validate(self) -> TrainConfig:
        """Check types and ranges; raise :class:`ConfigError` naming the option. Returns self."""
        for f in fields(self):
            _check_type(f.name, getattr(self, f.name), f.type)
        _positive(self, "steps", "batch_size", "lap_levels", "val_segment", "raft_iters")
        if self.teacher_width is not None and self.teacher_width < MIN_WIDTH:
            raise ConfigError(f"teacher_width: must be >= {MIN_WIDTH} (its first convolution has width // 2 "
                              f"channels), got {self.teacher_width}")  # fmt: skip
        _positive(self, "log_every", "val_every", "ckpt_every", "sample_every", "keep_checkpoints")
        _non_negative(self, "threads", "num_workers", "max_frames", "warmup", "time_limit", "weight_decay")
        _non_negative(self, "grad_clip", "distill_weight", "teacher_weight", "val_max", "pan_pixels")
        if self.seed < 0:  # numpy's generators refuse negative seeds
            raise ConfigError(f"seed: must be 0 or more, got {self.seed}")
        if not self.lr > 0 or not math.isfinite(self.lr):
            raise ConfigError(f"lr: must be a positive number, got {self.lr}")
        if not 0 <= self.min_lr <= self.lr:
            raise ConfigError(f"min_lr: must be between 0 and lr ({self.lr}), got {self.min_lr}")
        if len(self.betas) != 2 or not all(0 <= b < 1 for b in self.betas):
            raise ConfigError(f"betas: expected two numbers in [0, 1), got {self.betas}")
        for name in ("flip_h", "flip_v", "rot90", "channel_perm", "reverse", "pan"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ConfigError(f"{name}: is a probability and must be in [0, 1], got {getattr(self, name)}")
        if not 0.0 <= self.val_fraction < 1.0:
            raise ConfigError(f"val_fraction: must be in [0, 1), got {self.val_fraction}")
        if not 0.0 < self.video_scale <= 1.0:
            raise ConfigError(f"video_scale: must be in (0, 1], got {self.video_scale}")
        _choice(self, "amp", AMP_MODES)
        _choice(self, "teacher", TEACHERS)
        _choice(self, "distill_norm", ("rms", "l1", "epe"))
        _choice(self, "distill_mask", ("better", "all"))
        _choice(self, "dis_preset", DIS_PRESETS)
        _size(self.crop, "crop", 16)
        if self.val_crop:
            _size(self.val_crop, "val_crop", 16)
        if not self.windows or any(w < 3 for w in self.windows):
            raise ConfigError(f"windows: window lengths must be >= 3 frames (I0, It, I1), got {self.windows}")
        if not self.data:
            raise ConfigError("data: at least one data source is needed (e.g. sample:bikes, video:clip.mp4)")
        sources = sum(x is not None for x in (self.model, self.model_path, self.arch))
        if sources > 1:
            raise ConfigError("model: give only one of model, model_path and arch")
        if sources == 0:
            raise ConfigError("model: give one of model (a version to fine-tune), model_path or arch (from scratch)")
        if self.teacher == "raft" and not self.raft_weights:
            raise ConfigError("raft_weights: teacher 'raft' needs the path of a torchvision RAFT weights file")
        if self.device not in ("auto", "cpu") and not self.device.startswith("cuda"):
            raise ConfigError(f"device: expected auto, cpu, cuda or cuda:N, got {self.device!r}")
        return self


def _flatten(data: dict[str, Any], origin: str) -> dict[str, Any]:
    mappings = {f.name for f in fields(TrainConfig) if str(f.type).startswith("dict")}
    flat: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, dict) and key not in mappings:  # a readability table such as [optim] or [model]
            for k, v in value.items():
                if k in flat:
                    raise ConfigError(f"{k}: given twice in {origin}")
                flat[k] = v
        else:
            if key in flat:
                raise ConfigError(f"{key}: given twice in {origin}")
            flat[key] = value
    return flat


def _check_type(name: str, value: Any, annotation: Any) -> None:
    text = str(annotation)
    if value is None:
        if "None" not in text:
            raise ConfigError(f"{name}: must not be empty (null)")
        return
    if text.startswith("bool"):
        ok = isinstance(value, bool)
    elif text.startswith("int"):
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif text.startswith("float"):
        ok = isinstance(value, int | float) and not isinstance(value, bool)
    elif text.startswith("str"):
        ok = isinstance(value, str)
    elif text.startswith("list[int]"):
        ok = isinstance(value, list) and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
    elif text.startswith("list[float]"):
        ok = isinstance(value, list) and all(isinstance(v, int | float) and not isinstance(v, bool) for v in value)
    elif text.startswith("list[str]"):
        ok = isinstance(value, list) and all(isinstance(v, str) for v in value)
    elif text.startswith("dict"):
        ok = isinstance(value, dict)
    else:  # pragma: no cover - every field type is listed above
        ok = True
    if not ok:
        raise ConfigError(f"{name}: expected {text.replace(' | None', '')}, got {value!r}")


def _positive(cfg: TrainConfig, *names: str) -> None:
    for n in names:
        if not getattr(cfg, n) > 0:
            raise ConfigError(f"{n}: must be > 0, got {getattr(cfg, n)}")


def _non_negative(cfg: TrainConfig, *names: str) -> None:
    for n in names:
        v = getattr(cfg, n)
        if not v >= 0 or not math.isfinite(v):
            raise ConfigError(f"{n}: must be >= 0, got {v}")


def _choice(cfg: TrainConfig, name: str, allowed: tuple[str, ...]) -> None:
    if getattr(cfg, name) not in allowed:
        raise ConfigError(f"{name}: expected one of {', '.join(allowed)}, got {getattr(cfg, name)!r}")


def _size(value: list[int], name: str, minimum: int) -> None:
    if len(value) not in (1, 2) or any(v < minimum for v in value):
        raise ConfigError(f"{name}: expected SIZE or HEIGHT WIDTH (each >= {minimum}), got {value}")


def load_config_file(path: str | Path) -> dict[str, Any]:
    """Read a JSON or TOML configuration file into a mapping."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config: file {path} does not exist")
    text = path.read_text(encoding="utf-8")
    try:
        if path.suffix.lower() == ".toml":
            return tomllib.loads(text)
        data = json.loads(text)
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"config: cannot parse {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"config: {path} must hold a mapping of options")
    return data


# ---------------------------------------------------------------------- command line
def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    """One ``--option`` per field (defaults None: only given flags override the file)."""
    parser.add_argument("--config", help="JSON or TOML file with options (flags override it)")
    for f in fields(TrainConfig):
        flag = "--" + f.name.replace("_", "-")
        text = str(f.type)
        kw: dict[str, Any] = {"default": None, "dest": f.name}
        default = f.default_factory() if f.default is MISSING and f.default_factory is not MISSING else f.default
        text_help = HELP.get(f.name, "")
        kw["help"] = text_help if "(default:" in text_help else f"{text_help} (default: {default})"
        if text.startswith("bool"):
            kw["action"] = argparse.BooleanOptionalAction
        elif text.startswith("list"):
            kw["nargs"] = "+"
            kw["type"] = int if "int" in text else float if "float" in text else str
        elif text.startswith("dict"):
            kw["type"] = _json_dict
            kw["metavar"] = "JSON"
        else:
            kw["type"] = int if text.startswith("int") else float if text.startswith("float") else str
        parser.add_argument(flag, **kw)


def _json_dict(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(f"not valid JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError("expected a JSON object")
    return value


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """File options (``--config``) overridden by every flag that was given."""
    data: dict[str, Any] = {}
    if getattr(args, "config", None):
        data = _flatten(load_config_file(args.config), str(args.config))
    for f in fields(TrainConfig):
        value = getattr(args, f.name, None)
        if value is not None:
            data[f.name] = value
    return TrainConfig.from_dict(data, origin=str(getattr(args, "config", None) or "flags"))
