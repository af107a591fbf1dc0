"""A hostile user: every verb driven with random argument vectors and random corrupt input files.

Property (hypothesis): the command ends with exit code 0, 2 or 75 — never a traceback — and no input
file changes.  The verbs run in-process (`qcdhpc.cli.main.main(argv)`), so an uncaught exception is
the traceback a user would see.  Argument values come from per-option pools of junk (0, −1, nan, inf,
huge numbers, words, the input itself, a device node, a directory) and tiny valid values, so a run that
is accepted stays small; corrupt inputs are zero-byte files, random bytes, truncated HDF5, foreign HDF5,
containers with wrong datasets, and junk JSON.

Also here, as named regression tests: the cases of the hostile-user probe behind the issue
"One house for many theories" that other test files do not already cover.
"""
import contextlib
import hashlib
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, Phase, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from qcdhpc.cli.main import main  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
OK_CODES = {0, 2, 75}


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "not a file"


def call(argv) -> tuple[int, str]:
    """(exit code, stderr) of `qcdhpc argv` run in-process; an exception escaping is a traceback."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            code = main([str(a) for a in argv])
        except SystemExit as exc:  # argparse's own refusals
            code = exc.code if isinstance(exc.code, int) else 2
    return code, err.getvalue()


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """Valid inputs of every kind, plus corrupt files, made once."""
    d = tmp_path_factory.mktemp("hostile")
    ens = d / "ens.h5"
    assert call(["hmc", "--L", "4", "--kappa", "0.2", "--lam", "0.05", "--nchains", "2", "--ntraj", "20",
                 "--therm", "2", "--seed", "1", "--out", ens, "--quiet"])[0] == 0
    model = d / "model.pt"
    assert call(["train", ens, "--out", model, "--epochs", "1", "--batch", "8", "--channels", "4",
                 "--depth", "1", "--device", "cpu", "--quiet"])[0] == 0
    samples = d / "dm.h5"
    assert call(["sample", model, "--n", "8", "--steps", "2", "--batch", "8", "--device", "cpu",
                 "--out", samples, "--quiet"])[0] == 0
    point = d / "point"
    point.mkdir()
    assert call(["measure", ens, ens, samples, "--labels", "hmc_train,hmc_test,dm_samples",
                 "--out", point / "observables.json", "--quiet"])[0] == 0
    corrupt = {}
    (d / "empty.h5").write_bytes(b"")
    corrupt["empty"] = d / "empty.h5"
    (d / "random.h5").write_bytes(np.random.default_rng(0).bytes(5000))
    corrupt["random"] = d / "random.h5"
    (d / "truncated.h5").write_bytes(ens.read_bytes()[:3000])
    corrupt["truncated"] = d / "truncated.h5"
    with h5py.File(d / "foreign.h5", "w") as f:
        f["data"] = np.zeros(3)
    corrupt["foreign"] = d / "foreign.h5"
    bad = d / "group_configs.h5"  # /configs stored as a group
    with h5py.File(ens) as src, h5py.File(bad, "w") as f:
        for k, v in src.attrs.items():
            f.attrs[k] = v
        f.create_group("configs")
        for k in ("chain", "traj"):
            f[k] = src[k][()]
    corrupt["group_configs"] = bad
    short = d / "short_chain.h5"  # /chain with 5 entries for all the configurations
    with h5py.File(ens) as src, h5py.File(short, "w") as f:
        for k, v in src.attrs.items():
            f.attrs[k] = v
        f["configs"] = src["configs"][()]
        f["chain"] = src["chain"][:5]
        f["traj"] = src["traj"][()]
        src.copy("history", f)
    corrupt["short_chain"] = short
    (d / "junk.json").write_text("{not json")
    corrupt["junk_json"] = d / "junk.json"
    (d / "model_junk.pt").write_bytes(b"PK\x03\x04 not a zip")
    corrupt["junk_model"] = d / "model_junk.pt"
    ro = d / "corrupt_point"
    ro.mkdir()
    (ro / "observables.json").write_text('{"ensembles": 3}')
    corrupt["bad_point"] = ro
    return {"dir": d, "ens": ens, "model": model, "samples": samples, "point": point, "corrupt": corrupt}


def _inputs(world) -> list[Path]:
    files = [world["ens"], world["model"], world["samples"], world["point"] / "observables.json"]
    return files + [p for p in world["corrupt"].values() if p.is_file()]


# Junk shared by every numeric option; per-verb pools add tiny valid values.
JUNK = ["0", "-1", "nan", "inf", "-inf", "1e400", "abc", "", "3.5", str(2**70), "-0"]


def _pools(world):
    out = str(world["dir"] / "out.h5")
    paths = [str(p) for p in _inputs(world)] + ["/dev/null", str(world["dir"]), str(world["point"])]
    files = [str(world["ens"]), str(world["samples"])] + [str(p) for p in world["corrupt"].values()]
    return {
        "hmc": (["hmc", "--L", "4", "--kappa", "0.2", "--lam", "0.05", "--ntraj", "4", "--therm", "1",
                 "--quiet", "--out", out],
                {"--L": ["2", "3", str(10**6)], "--kappa": ["0.3", "0.1"], "--lam": ["0", "-0.5", "0.5"],
                 "--nchains": ["1", "2", str(10**9)], "--ntraj": ["1", "2"], "--therm": ["0", "1"],
                 "--every": ["1", "2", "5"], "--nmd": ["1", "2"], "--tau": ["0.5", "1e-300", "1e300"],
                 "--integrator": ["leapfrog", "verlet"], "--seed": ["0", str(2**64)],
                 "--start": ["cold", "warm"], "--dtype": ["float32", "int8"], "--device": ["cuda", "tpu"],
                 "--out": paths, "--checkpoint-every": ["1"], "--checkpoint-seconds": ["0"]}),
        "cl": (["cl", "--walkers", "4", "--therm", "10", "--steps", "20", "--every", "10", "--quiet",
                "--out", out],
               {"--sigma": ["1+1j", "-1", "1-i", "j", "1+nanj"], "--lam": ["0", "1", "-1"],
                "--walkers": ["1", "2", str(10**12)], "--therm": ["0", "10"], "--steps": ["10", "15", str(10**15)],
                "--every": ["1", "3"], "--dt": ["0.5", "1e-300", "1e300"], "--scheme": ["euler", "rk4"],
                "--n-y": ["0.5", "-1"], "--adaptive": [], "--seed": ["1", str(2**64)], "--out": paths,
                "--checkpoint-every": ["1", "7"]}),
        "measure": (["measure", str(world["ens"]), "--quiet", "--out", str(world["dir"] / "m.json")],
                    {"FILE": files, "--out": paths, "--bins": ["1", "5", str(10**9)],
                     "--errors": ["gamma", "jackknife", "bogus"], "--labels": ["a", "a,b", ""],
                     "--plots": paths + [str(world["dir"] / "plots")]}),
        "report": (["report", str(world["point"]), "--out", str(world["dir"] / "r.md")],
                   {"FILE": [str(world["point"]), str(world["corrupt"]["bad_point"]), str(world["dir"] / "nope"),
                             str(world["ens"])],
                    "--out": paths + [str(world["point"] / "observables.json")]}),
        "sample": (["sample", str(world["model"]), "--n", "4", "--steps", "1", "--batch", "4", "--device", "cpu",
                    "--quiet", "--out", out],
                   {"FILE": [str(world["model"]), str(world["corrupt"]["junk_model"]), str(world["ens"]),
                             str(world["corrupt"]["empty"])],
                    "--n": ["1", str(10**12)], "--steps": ["1", "2"], "--batch": ["1", "2", str(10**9)],
                    "--sampler": ["pc", "ode", "ddim"], "--seed": ["1", str(2**63)], "--snr": ["0.1"],
                    "--device": ["cuda", "tpu", "cpu:7"], "--ode-method": ["rk45", "euler"], "--out": paths}),
        "train": (["train", str(world["ens"]), "--out", str(world["dir"] / "run"), "--epochs", "1", "--batch", "8",
                   "--channels", "4", "--depth", "1", "--device", "cpu", "--quiet"],
                  {"FILE": files, "--out": paths + [str(world["model"])], "--epochs": ["1"],
                   "--batch": ["1", str(10**9)], "--lr": ["1e-3", "1e9"], "--channels": ["2", str(10**9)],
                   "--depth": ["1", "5", "40"], "--sde": ["vp", "ou"], "--max-configs": ["1", "2"],
                   "--ema-decay": ["0.5", "1", "2"], "--sigma-max": ["50", "0.001"], "--seed": ["1", str(2**64)],
                   "--device": ["cuda", "tpu"], "--amp": ["bf16", "fp8"]}),
        "toy-cumulants": (["toy-cumulants", "--n-train", "200", "--epochs", "1", "--batch", "64", "--hidden", "8",
                           "--n-layers", "1", "--n-samples", "50", "--steps", "2", "--quiet",
                           "--out", str(world["dir"] / "toy.json")],
                          {"--n-train": ["2", "10"], "--epochs": ["1"], "--batch": ["1", str(10**9)],
                           "--hidden": ["1", str(10**9)], "--n-samples": ["2", str(10**12)],
                           "--steps": ["1"], "--sdes": ["ve", "vp", "ou", ""], "--out": paths,
                           "--sampler": ["ode", "bogus"], "--lr": ["1e-3"]}),
    }


def _mutate(base, pool, draw):
    argv = list(base)
    keys = sorted(pool)
    for _ in range(draw(st.integers(1, 3))):
        key = draw(st.sampled_from(keys))
        if not pool[key]:  # a flag without a value
            argv.append(key)
            continue
        value = draw(st.sampled_from(pool[key] + JUNK))
        if key == "FILE":
            argv[1] = value
        elif key in argv:
            argv[argv.index(key) + 1] = value
        else:
            argv += [key, value]
    return argv


@pytest.mark.parametrize("verb", ["hmc", "cl", "measure", "report", "sample", "train", "toy-cumulants"])
def test_random_argument_vectors_never_traceback_nor_change_inputs(world, verb, monkeypatch, tmp_path):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.chdir(tmp_path)  # junk values become relative output paths: keep them out of the tree
    base, pool = _pools(world)[verb]
    inputs = _inputs(world)
    before = {p: sha(p) for p in inputs}

    # no shrinking: every example is a whole command; the first failure is reported as drawn
    @settings(max_examples=25, deadline=None, derandomize=True, phases=(Phase.generate,),
              suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
    @given(st.data())
    def prop(data):
        argv = _mutate(base, pool, data.draw)
        try:
            code, err = call(argv)
        except BaseException as exc:  # noqa: BLE001 - that is the finding
            raise AssertionError(f"qcdhpc {' '.join(argv)}: traceback {type(exc).__name__}: {exc}") from exc
        # 1 is the documented outcome of a computation that diverged (non-finite ΔH, every walker
        # run away): allowed with its one-line reason, never as a traceback
        diverged = code == 1 and ": failed: " in err and "Traceback" not in err
        assert code in OK_CODES or diverged, f"qcdhpc {' '.join(argv)} exited {code}: {err[-2000:]}"
        if code == 2:
            reasons = [line for line in err.splitlines() if "error:" in line]
            assert len(reasons) == 1, f"qcdhpc {' '.join(argv)}: refusal without one reason line: {err}"
        for p in inputs:
            assert sha(p) == before[p], f"qcdhpc {' '.join(argv)} changed {p}"

    prop()


# ---------------------------------------------------------------- the probe's cases, by name

@pytest.mark.parametrize("case", ["measure_out_is_input", "report_out_is_input", "sample_out_is_model",
                                  "measure_huge_bins", "group_configs", "short_chain", "junk_json_report",
                                  "sample_seed_2_70", "train_epochs_0"])
def test_probe_case_is_refused(world, case):
    ens, model, point = world["ens"], world["model"], world["point"]
    argv = {
        "measure_out_is_input": ["measure", ens, "--out", ens],
        "report_out_is_input": ["report", point, "--out", point / "observables.json"],
        "sample_out_is_model": ["sample", model, "--n", "2", "--out", model, "--overwrite", "--device", "cpu"],
        "measure_huge_bins": ["measure", ens, "--bins", "100000000", "--out", world["dir"] / "b.json"],
        "group_configs": ["measure", world["corrupt"]["group_configs"], "--out", world["dir"] / "g.json"],
        "short_chain": ["measure", world["corrupt"]["short_chain"], "--out", world["dir"] / "s.json"],
        "junk_json_report": ["report", world["corrupt"]["bad_point"], "--out", world["dir"] / "r.md"],
        "sample_seed_2_70": ["sample", model, "--n", "2", "--seed", str(2**70), "--device", "cpu",
                             "--out", world["dir"] / "s70.h5"],
        "train_epochs_0": ["train", ens, "--out", world["dir"] / "e0", "--epochs", "0", "--device", "cpu"],
    }[case]
    before = {p: sha(p) for p in _inputs(world)}
    code, err = call(argv)
    assert code == 2, err
    assert "Traceback" not in err and err.count("error:") == 1, err
    assert all(sha(p) == before[p] for p in before)


def test_mpirun_without_mpi4py_is_one_line(tmp_path):
    """`pip install qcdhpc` without the [mpi] extra, started under mpirun: one line, exit 2 (here the
    launcher's environment is set and mpi4py made unimportable)."""
    block = tmp_path / "block"
    block.mkdir()
    (block / "mpi4py.py").write_text("raise ImportError('mpi4py is not installed')\n")
    env = {**ENV, "PYTHONPATH": f"{block}{os.pathsep}{ENV['PYTHONPATH']}", "OMPI_COMM_WORLD_SIZE": "2",
           "OMPI_COMM_WORLD_RANK": "0"}
    r = subprocess.run([sys.executable, "-m", "qcdhpc", "hmc", "--L", "4", "--kappa", "0.2", "--lam", "0.1",
                        "--nchains", "2", "--out", str(tmp_path / "x.h5")], env=env, capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    assert "mpi4py is not installed" in r.stderr and "qcdhpc[mpi]" in r.stderr


def test_legacy_files_are_read(tmp_path):
    """Files of format qcdhpc.ensemble v1 (before containers had kinds) open as fields / samples; the
    placeholder /hmc of old sample files is not taken for Monte Carlo history."""
    from qcdhpc.io.containers import open_container

    old = tmp_path / "old.h5"
    with h5py.File(old, "w") as f:
        f.attrs.update({"format": "qcdhpc.ensemble", "format_version": 1, "kind": "phi4-hmc", "nchains": 2,
                        "L": [4, 4]})
        f["configs"] = np.zeros((4, 4, 4))
        f["chain"] = np.array([0, 1, 0, 1])
        f["traj"] = np.array([3, 3, 4, 4])
        f["hmc/dH"] = np.zeros((2, 5))
        f["hmc/accepted"] = np.ones((2, 5), np.uint8)
        f["hmc"].attrs["n_therm"] = 3
    with open_container(old) as c:
        assert c.kind == "fields" and c.legacy and c.history["hmc"].attrs["n_therm"] == 3
    samples = tmp_path / "old_samples.h5"
    with h5py.File(samples, "w") as f:
        f.attrs.update({"format": "qcdhpc.ensemble", "format_version": 1, "kind": "diffusion-samples",
                        "hmc_history": "none"})
        f["configs"] = np.zeros((3, 4, 4), np.float32)
        f["hmc/dH"] = np.zeros((1, 3))
        f["hmc/accepted"] = np.ones((1, 3), np.uint8)
    with open_container(samples) as c:
        assert c.kind == "samples" and c.history == {}
