"""``vsrife``: the command-line entry point (console script and ``python -m vsrife.cli``).

Exit status: 0 success, 1 runtime failure (undecodable input, encoder/model failure, verification
mismatch), 2 bad invocation (malformed or conflicting arguments, missing input, unknown model,
refusing to overwrite), 130 interrupted by Ctrl-C, 143 stopped by SIGTERM (both: partial output removed). Errors are
printed as ``vsrife: error: ...`` without a traceback (``VSRIFE_DEBUG=1`` shows it).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import signal
import sys
import threading
import traceback
from collections.abc import Sequence
from typing import Any, NoReturn

from vsrife import __version__
from vsrife.cli import bench, evaluate, interpolate, join, models
from vsrife.cli.errors import EXIT_FAILURE, EXIT_INTERRUPTED, EXIT_TERMINATED, EXIT_USAGE, CliError

__all__ = ["build_parser", "main"]


class _Parser(argparse.ArgumentParser):
    """argparse with ``vsrife: error: ...`` messages (exit status 2)."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"vsrife: error: {message} (see `{self.prog} --help`)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="vsrife",
        description="RIFE frame interpolation: render videos, manage models, measure quality and speed.",
        epilog="Run `vsrife COMMAND --help` for a command's options.",
    )
    parser.add_argument("--version", action="version", version=f"vsrife {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser, required=True)
    for module in (interpolate, join, models, evaluate, bench):
        module.add_parser(sub)
    return parser


class _Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP, turned into an exception so that the same clean-up as for Ctrl-C runs."""


# job runners stop work with SIGTERM; a closed terminal or a dropped ssh session sends SIGHUP
_STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name))


def _terminate(signum: int, frame: Any) -> None:
    raise _Terminated(signum)


# The library's messages name its keyword arguments; on the command line they are options.
_OPTION_NAMES = (
    (re.compile(r"\bmodel_path="), "--model-path "),
    (re.compile(r"\bmodel="), "--model "),
    (re.compile(r"\btimestep_mode\b"), "--timestep-mode"),
    (re.compile(r"\bsc_threshold\b"), "--sc-threshold"),
    (re.compile(r"\bskip_threshold\b"), "--skip-threshold"),
    (re.compile(r"\bsc_method\b"), "--sc-method"),
    (re.compile(r"\bon_cut\b"), "--on-cut"),
    (re.compile(r"\btorch_compile\b"), "--compile"),
    (re.compile(r"\btrt_cache_dir\b"), "--trt-cache-dir"),
    (re.compile(r"core\.std\.SetFieldBased\(clip, 0\)"), "--assume-progressive"),
)


def cli_wording(message: str) -> str:
    """``message`` with the library's keyword arguments (``model_path=``, ``timestep_mode``...) spelt as the command
    line's options."""
    for pattern, option in _OPTION_NAMES:
        message = pattern.sub(option, message)
    return message


def _report(exc: BaseException, code: int) -> int:
    if os.environ.get("VSRIFE_DEBUG"):
        traceback.print_exc()
    with contextlib.suppress(OSError):  # no terminal any more (a hangup): the exit status still tells
        print(f"vsrife: error: {cli_wording(str(exc))}", file=sys.stderr)
    return code


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit status (the console script passes it to ``sys.exit``)."""
    args = build_parser().parse_args(argv)
    previous: dict[int, Any] = {}
    if threading.current_thread() is threading.main_thread():
        for sig in _STOP_SIGNALS:
            if sig != getattr(signal, "SIGHUP", None) or signal.getsignal(sig) is not signal.SIG_IGN:  # nohup
                previous[sig] = signal.signal(sig, _terminate)
    try:
        return int(args.run(args) or 0)
    except CliError as exc:
        return _report(exc, exc.exit_code)
    except KeyboardInterrupt as exc:
        with contextlib.suppress(OSError):  # after a hangup the terminal is gone: printing fails
            print("\nvsrife: interrupted; no partial output left behind", file=sys.stderr)
        if isinstance(exc, _Terminated):  # 128 + the signal, as a shell reports it (143 for SIGTERM)
            return 128 + exc.args[0] if exc.args and isinstance(exc.args[0], int) else EXIT_TERMINATED
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # `vsrife models list | head`: the reader has all it wanted
        with contextlib.suppress(OSError):  # stop Python's own complaint about flushing stdout at exit
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except OSError as exc:  # e.g. no permission to write beside OUT, disk full
        return _report(exc, EXIT_FAILURE)
    except Exception as exc:
        if type(exc).__module__ == "vapoursynth":  # vs.Error from a filter outside our own checks
            return _report(exc, EXIT_FAILURE)
        raise
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


if __name__ == "__main__":
    raise SystemExit(main())
