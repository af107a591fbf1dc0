"""What every `qcdhpc` sub-command shares: the refusal convention.

A refused command (bad arguments, parameters or files, found before any work) prints argparse-style
usage and the reason on stderr and exits with EXIT_USAGE, without a traceback.
"""
from __future__ import annotations

import sys

EXIT_USAGE = 2


def refuse(args, message: str, command: str | None = None) -> int:
    """Print usage + `qcdhpc CMD: error: message` to stderr; return EXIT_USAGE."""
    if getattr(args, "subparser", None) is not None:
        args.subparser.print_usage(sys.stderr)
    command = command or getattr(args, "command", None) or "?"
    print(f"qcdhpc {command}: error: {message}", file=sys.stderr)
    return EXIT_USAGE
