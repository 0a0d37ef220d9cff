"""Command line: ``python -m vsrife.train {fit,evaluate,export,ddp-check} ...`` (``--help`` on each)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from vsrife.engine.interpolator import SCALES
from vsrife.models import FetchError, ModelLoadError
from vsrife.train.config import ConfigError, add_config_arguments, config_from_args
from vsrife.train.evaluate import EvaluationError

BENCHMARKS = ("vimeo", "ucf101", "middlebury", "footage", "footage-thirds")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m vsrife.train", description="Train and evaluate RIFE networks.")
    sub = parser.add_subparsers(dest="command", required=True)
    fit = sub.add_parser("fit", help="train (single process, or every process under torchrun)")
    add_config_arguments(fit)
    ev = sub.add_parser("evaluate", help="score a model on a benchmark layout or footage")
    ev.add_argument("--model", help="registered version (e.g. 3.6, 4.6)")
    ev.add_argument("--model-path", help="checkpoint file or folder (e.g. an exported model)")
    ev.add_argument("--benchmark", choices=BENCHMARKS, required=True)
    ev.add_argument("--root", required=True, help="dataset folder; footage: a video, frame folder or sample:NAME")
    ev.add_argument("--limit", type=_positive_int, default=None, help="score at most this many items")
    ev.add_argument("--device", default="auto")
    ev.add_argument("--scale", type=float, default=1.0, choices=SCALES, help="flow resolution factor")
    ev.add_argument("--json", help="also write the result to this file (replaced if it exists; checked first)")
    ex = sub.add_parser("export", help="export a training checkpoint for load_model / core.rife")
    ex.add_argument("checkpoint", help="step_XXXXXXXX.pt, or a run folder (its latest checkpoint)")
    ex.add_argument("--out", required=True, help="folder to write flownet.pkl into")
    ex.add_argument("--name", default=None)
    ex.add_argument("--overwrite", action="store_true", help="replace a flownet.pkl already in --out")
    dd = sub.add_parser("ddp-check", help="check that N gloo processes give the gradients of one (CPU)")
    add_config_arguments(dd)
    dd.add_argument("--world", type=_positive_int, default=2, help="processes (1 or more)")
    return parser


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, got {value}")
    return value


def _footage(root: str) -> Any:
    from vsrife.train.data import load_source

    if ":" in root and root.split(":", 1)[0] in ("sample", "video", "frames"):
        return load_source(root)[0]
    path = Path(root)
    return load_source(("frames:" if path.is_dir() else "video:") + root)[0]


def _evaluate(args: argparse.Namespace) -> dict[str, Any]:
    from vsrife.models import load_model
    from vsrife.train import evaluate as E
    from vsrife.train.distributed import resolve_device

    device = resolve_device(args.device)
    try:
        loaded = load_model(args.model, args.model_path, device=device)
    except KeyError as exc:  # an unknown version name
        raise ConfigError(f"model: {exc.args[0]}") from None
    interp = E.network_interpolator(loaded.network, device, args.scale)
    if args.benchmark == "vimeo":
        res = E.evaluate_vimeo(args.root, interp, limit=args.limit)
    elif args.benchmark == "ucf101":
        res = E.evaluate_ucf101(args.root, interp, limit=args.limit)
    elif args.benchmark == "middlebury":
        res = E.evaluate_middlebury(args.root, interp, limit=args.limit)
    else:
        res = E.evaluate_footage(_footage(args.root), interp, thirds=args.benchmark == "footage-thirds",
                                 limit=args.limit)  # fmt: skip
    if res.count == 0:  # as `vsrife eval` with no usable triplet: a failure, not a result of NaNs
        why = f"every window holds a duplicate or a cut ({res.skipped})" if res.skipped else "too few frames"
        raise E.EvaluationError(f"root: nothing to score in {args.root}: {why}")
    return {"model": loaded.name, **res.to_dict()}


def _check_json_path(path: Path) -> None:
    """Refuse a --json path that could not be written, before the evaluation (not after it)."""
    if path.is_dir():
        raise ConfigError(f"json: {path} is a folder")
    folder = path.absolute().parent
    if not folder.is_dir():
        raise ConfigError(f"json: folder {folder} does not exist")
    if not os.access(folder, os.W_OK | os.X_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise ConfigError(f"json: {path} cannot be written (permission denied)")


def _check_export_out(out: Path, overwrite: bool) -> None:
    """The export folder: not a file, and no exported model in it unless ``--overwrite``."""
    if out.exists() and not out.is_dir():
        raise ConfigError(f"out: {out} is a file, not a folder")
    if (out / "flownet.pkl").exists() and not overwrite:
        raise ConfigError(f"out: {out} already holds an exported model (flownet.pkl); pass --overwrite to replace "
                          "it, or choose another folder")  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "fit":
            from vsrife.train.distributed import cleanup, init_distributed
            from vsrife.train.loop import Trainer

            cfg = config_from_args(args)
            ctx = init_distributed(cfg.device)
            try:
                summary = Trainer(cfg, ctx=ctx).fit(ctrl_c_saves=True)
            finally:
                cleanup()
            if ctx.is_main:
                print(json.dumps(summary, indent=2, default=str))
            if summary["stopped"] == "interrupted":
                return 130  # Ctrl-C, after the checkpoint of the step reached
        elif args.command == "evaluate":
            if args.json:
                _check_json_path(Path(args.json))
            result = _evaluate(args)
            text = json.dumps(result, indent=2, allow_nan=False)
            print(text, flush=True)  # the scores are shown even if the file cannot be written after all
            if args.json:
                try:
                    Path(args.json).write_text(text + "\n")
                except OSError as exc:
                    print(f"error: json: cannot write {args.json}: {exc.strerror or exc}", file=sys.stderr)
                    return 1
        elif args.command == "export":
            from vsrife.train.checkpoint import latest_checkpoint
            from vsrife.train.export import export_checkpoint

            _check_export_out(Path(args.out), args.overwrite)
            ckpt = Path(args.checkpoint)
            if ckpt.is_dir():
                found = latest_checkpoint(ckpt / "checkpoints") or latest_checkpoint(ckpt)
                if found is None:
                    raise ConfigError(f"checkpoint: no step_XXXXXXXX.pt in {ckpt}")
                ckpt = found
            try:
                print(export_checkpoint(ckpt, args.out, args.name))
            except ValueError as exc:  # not a training checkpoint
                raise ConfigError(f"checkpoint: {exc}") from None
        else:
            from vsrife.train.distributed import gradient_probe

            probe_cfg = config_from_args(args).to_dict()
            if probe_cfg["batch_size"] % args.world:  # found before spawning, not as a worker's traceback
                raise ConfigError(f"batch_size: {probe_cfg['batch_size']} is not divisible by --world {args.world}")
            one, many = gradient_probe(probe_cfg, 1), gradient_probe(probe_cfg, args.world)
            diff = max(float((one[k] - many[k]).abs().max()) for k in one)
            scale = max(float(v.abs().max()) for v in one.values())
            print(json.dumps({"world": args.world, "max_abs_diff": diff, "max_abs_grad": scale}))
            return 0 if diff <= 1e-5 * max(scale, 1.0) else 1
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (ModelLoadError, FetchError, FileNotFoundError) as exc:  # a model or checkpoint that is not there
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except FloatingPointError as exc:  # vsrife.train.loop.TrainingDiverged: diverged, not a crash
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except EvaluationError as exc:  # nothing to score, or an unreadable image: a failure, not a usage error
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
