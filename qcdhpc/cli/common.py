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


def run_segmented(args, command: str, make_run, errors=(ValueError, FileExistsError)):
    """Build and run a SegmentedRun (qcdhpc/run/driver.py) the way every producing verb does:
    `make_run(comm)` validates (its errors: refused, exit 2, printed by rank 0 only), then all ranks run
    it collectively.  Returns (exit code or None, summary on rank 0 or None, comm)."""
    from ..run import ranks

    comm = ranks.world()
    try:
        run = make_run(comm)
    except errors as exc:
        return (refuse(args, str(exc), command) if comm.rank == 0 else EXIT_USAGE), None, comm
    summary = ranks.collective(comm, run.run)
    return None, (summary if comm.rank == 0 else None), comm
