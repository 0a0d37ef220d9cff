"""Errors the CLI reports as ``vsrife: error: ...`` (no traceback) with a specific exit status."""

from __future__ import annotations

__all__ = ["EXIT_FAILURE", "EXIT_INTERRUPTED", "EXIT_TERMINATED", "EXIT_USAGE", "CliError", "UsageError"]

EXIT_FAILURE = 1
"""Runtime failure: undecodable input, encoder or model failure, verification mismatch."""
EXIT_USAGE = 2
"""Bad invocation: malformed or conflicting arguments, missing input, refusing to overwrite."""
EXIT_INTERRUPTED = 130
"""Ctrl-C (128 + SIGINT), after partial output was removed."""
EXIT_TERMINATED = 143
"""SIGTERM (128 + 15), e.g. from a job runner, after partial output was removed."""


class CliError(Exception):
    """A failure the user can act on; its message is printed without a traceback."""

    exit_code = EXIT_FAILURE


class UsageError(CliError):
    """The command line itself is wrong (exit status 2, like argparse's own errors)."""

    exit_code = EXIT_USAGE
