"""Fixtures for the real-Slurm tests: a one-node cluster started once per session (slurm_cluster.py).

The tests skip, with the reason, where Slurm cannot be set up (not root, no apt-get, daemons do not
come up).  Set QCDHPC_SLURM_REQUIRED=1 to make that a failure instead (CI machines known to work).
"""
import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from slurm_cluster import SlurmCluster, SlurmUnavailable  # noqa: E402


@pytest.fixture(scope="session")
def slurm_cluster():
    cluster = SlurmCluster(log=lambda msg: print(msg, file=sys.stderr))
    try:
        cluster.start()
    except SlurmUnavailable as exc:
        if os.environ.get("QCDHPC_SLURM_REQUIRED") == "1":
            pytest.fail(f"Slurm test cluster did not start: {exc}")
        pytest.skip(f"no test Slurm: {exc}")
    try:
        yield cluster
    finally:
        cluster.stop()
