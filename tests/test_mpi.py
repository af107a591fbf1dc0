"""MPI: chain split, serial fall-back, and a 2-rank run equal to the 1-rank run."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from qcdhpc.run import ranks as mpi

ROOT = Path(__file__).resolve().parents[1]
ARGS = ["hmc", "--L", "8", "--kappa", "0.2", "--lam", "0.02", "--nchains", "5", "--ntraj", "20",
        "--therm", "5", "--every", "2", "--seed", "99", "--checkpoint-every", "7", "--quiet"]


def test_split_range_covers_all_chains_contiguously():
    for n in (1, 5, 10, 17):
        for size in range(1, n + 1):
            blocks = [mpi.split_range(n, size, r) for r in range(size)]
            assert blocks[0][0] == 0 and blocks[-1][1] == n
            assert all(a[1] == b[0] for a, b in zip(blocks, blocks[1:]))
            sizes = [e - b for b, e in blocks]
            assert max(sizes) - min(sizes) <= 1 and sizes == sorted(sizes, reverse=True)
    assert [mpi.split_range(10, 4, r) for r in range(4)] == [(0, 3), (3, 6), (6, 8), (8, 10)]


def test_serial_without_launcher(monkeypatch):
    for var in mpi._SIZE_VARS + ("SLURM_PROCID",):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(mpi, "_WORLD", None)
    monkeypatch.setenv("SLURM_NTASKS", "4")  # inside an sbatch script, but not an srun task
    comm = mpi.world()
    assert (comm.rank, comm.size) == (0, 1) and comm.bcast(3) == 3 and comm.allgather(1) == [1]


@pytest.mark.mpi
@pytest.mark.skipif(shutil.which("mpirun") is None, reason="mpirun not installed")
def test_two_ranks_equal_one_rank(tmp_path):
    pytest.importorskip("mpi4py")
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
           "OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1",
           "OMPI_MCA_rmaps_base_oversubscribe": "1"}
    two, one = tmp_path / "two.h5", tmp_path / "one.h5"
    r = subprocess.run(["mpirun", "-n", "2", "--oversubscribe", sys.executable, "-m", "qcdhpc", *ARGS,
                        "--out", str(two)], env=env, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    r = subprocess.run([sys.executable, "-m", "qcdhpc", *ARGS, "--out", str(one)], env=env, cwd=ROOT,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    with h5py.File(two) as a, h5py.File(one) as b:
        assert a.attrs["mpi_size"] == 2
        assert set(a["chain"][()]) == set(range(5))  # rank 0 ran chains 0-2, rank 1 chains 3-4
        configs = a["configs"][()]
        chain = a["chain"][()]
        assert not np.array_equal(configs[chain == 0], configs[chain == 3])  # different streams
        for name in ("configs", "chain", "traj", "history/hmc/dH", "history/hmc/accepted"):
            np.testing.assert_array_equal(a[name][()], b[name][()], err_msg=name)
