"""Generic run machinery (qcdhpc/run): locks, signals outside the work loop, resume refusals, the
non-finite guard, output-path and memory refusals — through the real CLI, as a user meets them."""
import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

from qcdhpc.run import outputs, resources
from qcdhpc.run.lock import RunLock, RunLocked
from qcdhpc.run.signals import EXIT_INTERRUPTED

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
HMC = ["hmc", "--L", "8", "--kappa", "0.22", "--lam", "0.02", "--nchains", "2", "--ntraj", "30",
       "--therm", "4", "--every", "2", "--seed", "5", "--checkpoint-every", "5", "--checkpoint-seconds", "0",
       "--quiet"]
# The CLI with one library function slowed down, so that a signal lands in that phase.
SLOWED = ("import sys, time, importlib; mod = importlib.import_module('{module}'); obj = {obj}; "
          "f = getattr(obj, '{name}'); setattr(obj, '{name}', lambda *a, **k: (time.sleep({delay}), f(*a, **k))[1]); "
          "from qcdhpc.cli.main import main; sys.exit(main(sys.argv[1:]))")


def run(*args, timeout=120):
    return subprocess.run([sys.executable, "-m", "qcdhpc", *args], env=ENV, cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout)


def slowed(module, obj, name, delay, *args):
    code = SLOWED.format(module=module, obj=obj, name=name, delay=delay)
    return subprocess.Popen([sys.executable, "-c", code, *args], env=ENV, cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def sha(path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def assert_refused(r, *needles):
    assert r.returncode == 2, r.stdout + r.stderr
    assert "Traceback" not in r.stderr and "error:" in r.stderr, r.stderr
    for n in needles:
        assert n in r.stderr, r.stderr


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    out = tmp_path_factory.mktemp("ref") / "ref.h5"
    r = run(*HMC, "--out", str(out))
    assert r.returncode == 0, r.stderr
    return out


def same_ensemble(a, b):
    with h5py.File(a) as fa, h5py.File(b) as fb:
        for name in ("configs", "chain", "traj", "history/hmc/dH", "history/hmc/accepted"):
            np.testing.assert_array_equal(fa[name][()], fb[name][()], err_msg=name)


def test_second_writer_of_one_partial_is_refused(tmp_path):
    out = tmp_path / "o.h5"
    partial = tmp_path / "o.h5.partial"
    with RunLock(partial):  # another process holds the run (this test process)
        r = run(*HMC, "--out", str(out), "--resume")
        assert_refused(r, "in use by another qcdhpc process", f"pid {os.getpid()}")
        with pytest.raises(RunLocked):
            RunLock(partial).acquire()  # a second open file description conflicts, even in-process
    r = run(*HMC, "--out", str(out), "--resume")  # released: the run goes ahead
    assert r.returncode == 0, r.stderr
    assert not partial.exists()


def test_segments_without_manifest_are_refused_not_deleted(tmp_path, reference):
    out = tmp_path / "o.h5"
    p = slowed("qcdhpc._kernels", "mod", "hmc_trajectories", 0.05, *HMC, "--out", str(out))
    seg = tmp_path / "o.h5.partial" / "rank0000" / "seg000001.h5"
    deadline = time.monotonic() + 60
    while not seg.exists():
        assert p.poll() is None and time.monotonic() < deadline, p.communicate()
        time.sleep(0.01)
    p.kill()
    p.wait()
    (tmp_path / "o.h5.partial" / "run.json").unlink()
    r = run(*HMC, "--out", str(out), "--resume")
    assert_refused(r, "no run.json")
    assert seg.exists()  # nothing deleted


@pytest.mark.parametrize("phase", ["checks", "merge"])
def test_signal_outside_the_work_loop_exits_75_and_loses_nothing(tmp_path, reference, phase):
    """SIGTERM during the start-up checks or during the final merge: exit 75 (the Slurm templates
    requeue), no output file, and the rerun with --resume gives the unbroken result."""
    out = tmp_path / "o.h5"
    if phase == "checks":  # just after the lock is taken, before anything is written
        p = slowed("qcdhpc.run.driver", "mod.segments", "read_manifest", 3.0, *HMC, "--out", str(out))
        deadline = time.monotonic() + 60
        while not (tmp_path / "o.h5.partial" / ".lock").exists():
            assert p.poll() is None and time.monotonic() < deadline, p.communicate()
            time.sleep(0.01)
        time.sleep(0.2)
    else:
        p = slowed("qcdhpc.phi4.hmc", "mod.HMCRun", "merge", 3.0, *HMC, "--out", str(out))
        deadline = time.monotonic() + 60
        while not list(tmp_path.glob(".o.h5.tmp-*")) and not (tmp_path / "o.h5.partial" / "rank0000"
                                                                / "seg000006.h5").exists():
            assert p.poll() is None and time.monotonic() < deadline, p.communicate()
            time.sleep(0.01)
        time.sleep(0.5)
    p.send_signal(signal.SIGTERM)
    _, err = p.communicate(timeout=60)
    assert p.returncode == EXIT_INTERRUPTED, err
    assert "SIGTERM received" in err and "Traceback" not in err, err
    assert not out.exists() and not list(tmp_path.glob(".o.h5.tmp-*"))
    if phase == "checks":
        assert not (tmp_path / "o.h5.partial").exists()  # the lock was all there was: cleaned up
    else:
        assert (tmp_path / "o.h5.partial" / "rank0000" / "seg000006.h5").exists()
    r = run(*HMC, "--out", str(out), "--resume")
    assert r.returncode == 0, r.stderr
    same_ensemble(out, reference)


def test_diverging_run_stops_with_exit_1_and_keeps_its_checkpoint(tmp_path):
    out = tmp_path / "nan.h5"
    r = run("hmc", "--L", "8", "--kappa", "0.21", "--lam", "0.5", "--nchains", "2", "--ntraj", "20",
            "--therm", "0", "--tau", "20", "--nmd", "2", "--out", str(out))
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
    assert "diverged" in r.stderr and "dH = " in r.stderr
    assert not out.exists() and (tmp_path / "nan.h5.partial" / "run.json").exists()


@pytest.mark.parametrize("argv,needle", [
    (["--kappa", "0.3", "--lam", "0"], "unbounded"),
    (["--kappa", "0.2", "--lam", "-0.1"], "lam must be >= 0"),
    (["--L", "100000", "--kappa", "0.2", "--lam", "0.1"], "of memory"),
    (["--seed", str(2**70), "--kappa", "0.2", "--lam", "0.1"], "seed"),
])
def test_bad_hmc_physics_and_sizes_refused(tmp_path, argv, needle):
    r = run("hmc", "--L", "8", *argv, "--out", str(tmp_path / "x.h5"))
    assert_refused(r, needle)
    assert list(tmp_path.iterdir()) == []  # no stale .partial left behind


def test_outputs_never_replace_inputs_devices_or_foreign_files(tmp_path, reference):
    before = sha(reference)
    r = run(*HMC, "--out", "/dev/null", "--overwrite")
    assert_refused(r, "not a regular file")
    r = run(*HMC, "--out", str(tmp_path), "--overwrite")
    assert_refused(r, "is a directory")
    foreign = tmp_path / "notes.h5"
    foreign.write_text("my notes")
    r = run(*HMC, "--out", str(foreign), "--overwrite")
    assert_refused(r, "not a file qcdhpc wrote")
    assert foreign.read_text() == "my notes"
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        if os.access(ro, os.W_OK):
            pytest.skip("running as a user who can write anywhere (root)")
        r = run(*HMC, "--out", str(ro / "x.h5"))
        assert_refused(r, "cannot write in")
    finally:
        ro.chmod(0o700)
    assert sha(reference) == before


def test_check_output_unit(tmp_path):
    a = tmp_path / "a.h5"
    a.write_bytes(b"x")
    with pytest.raises(ValueError, match="also an input"):
        outputs.check_output(a, inputs=[a])
    link = tmp_path / "link.h5"
    link.symlink_to(a)
    with pytest.raises(ValueError, match="also an input"):
        outputs.check_output(link, inputs=[a])
    with pytest.raises(ValueError, match="exists; pass --overwrite"):
        outputs.check_output(a, replace=False, overwrite_flag="--overwrite")
    outputs.check_output(tmp_path / "new" / "deeper" / "b.json")  # may be created: nothing made yet
    assert not (tmp_path / "new").exists()
    with pytest.raises(ValueError, match="is not a directory"):
        outputs.check_output(a / "b.json")  # under a file


def test_memory_estimate_honours_the_override(monkeypatch):
    monkeypatch.setenv("QCDHPC_MEMORY_LIMIT", "1G")
    assert resources.available_bytes() == 1 << 30
    resources.check_fits(0.5 * (1 << 30), "small")
    with pytest.raises(ValueError, match="needs about 2 GiB of memory, but only 1 GiB"):
        resources.check_fits(2 << 30, "big")
    assert resources.parse_bytes("512M") == 512 << 20 and resources.parse_bytes("2GiB") == 2 << 30
