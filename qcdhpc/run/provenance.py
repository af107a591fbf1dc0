"""What every output records about how it was made: code version, time, command line."""
from __future__ import annotations

import datetime
import subprocess
from pathlib import Path

from .. import __version__


def code_version() -> str:
    """qcdhpc version, plus `git describe` when running from a git checkout."""
    try:
        desc = subprocess.run(["git", "describe", "--always", "--dirty", "--tags"],
                              cwd=Path(__file__).resolve().parent, capture_output=True, text=True,
                              timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        desc = ""
    return f"{__version__}+git.{desc}" if desc else __version__


def utc_now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def provenance(command: str) -> dict:
    """Root attributes every producer writes."""
    return {"code_version": code_version(), "created": utc_now(), "command": command}
