"""`qcdhpc` command line: a registry of verbs, one module per family or task.

    cli/phi4.py       hmc                      (φ⁴ ensembles)
    cli/cl.py         cl                       (complex Langevin walkers)
    cli/diffusion.py  train, sample, toy-cumulants (score-based diffusion models)
    cli/measure.py    measure                  (observables of any theory)
    cli/report.py     report

A new family adds its module to VERB_MODULES.  Each module's add_parsers(sub) registers its verbs
with `func` (args, parser) -> exit code.  Modules parse, call the library, print — nothing else.

Exit codes: 0 success; 2 refused arguments/parameters/files (before any work, one line with the
reason); 75 interrupted by a signal (SIGTERM/SIGUSR1/SIGINT) at any point of the command, with the
work done so far checkpointed (rerun with --resume); 1 a failed computation (e.g. non-finite ΔH) or
a bug.  Heavy modules (numpy, h5py, torch, the kernels) are imported inside the verbs, so
`qcdhpc --help` stays fast.
"""
from __future__ import annotations

import argparse
import importlib
import sys

from .. import __version__
from ..run import signals
from .common import refuse

VERB_MODULES = ("phi4", "cl", "diffusion", "measure", "report")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="qcdhpc", description="Lattice field theory ensembles on single-source C++/CUDA kernels, "
                                   "generative models, observables with honest errors.",
        epilog="exit codes: 0 ok, 2 refused before any work, 75 interrupted (rerun with --resume), "
               "1 failed")
    parser.add_argument("--version", action="version", version=f"qcdhpc {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in VERB_MODULES:
        module = importlib.import_module(f".{name}", __package__)
        (getattr(module, "add_parsers", None) or module.add_parser)(sub)
    return parser


def main(argv=None) -> int:
    signals.install()  # from the first instruction: a stop signal exits 75, never 143/138
    in_process = argv is not None
    try:
        parser = build_parser()
        argv = sys.argv[1:] if argv is None else list(argv)
        args = parser.parse_args(argv)
        args.argv = argv  # recorded in the outputs' `command` attribute
        return _dispatch(args, parser)
    except signals.Interrupted as exc:
        print(f"qcdhpc: interrupted: {exc}", file=sys.stderr)
        return exc.exit_code
    finally:
        if in_process:  # called in-process (tests): leave the caller's handlers as they were
            signals.uninstall()


def _dispatch(args, parser) -> int:
    from ..run.ranks import MPIUnavailable

    try:
        return args.func(args, parser)
    except MPIUnavailable as exc:
        return refuse(args, str(exc))
    except Exception as exc:
        if getattr(exc, "exit_code", None) == 1:  # run.driver.RunFailed: the computation went wrong
            print(f"qcdhpc {args.command}: failed: {exc}", file=sys.stderr)
            return 1
        raise


if __name__ == "__main__":
    raise SystemExit(main())
