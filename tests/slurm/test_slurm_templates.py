"""The sbatch templates (slurm/) and the Snakemake Slurm profile against a real one-node Slurm.

(a) hmc.sbatch with --ntasks=2 really runs `qcdhpc hmc` as 2 MPI ranks under srun (mpi_size == 2),
    and measure.sbatch measures its output;
(b) a stage signalled like at its time limit (SIGUSR1 to the batch shell) checkpoints, requeues itself,
    resumes with --resume, and ends with the same ensemble as an unbroken run;
(c) train.sbatch: fake GPUs via gres reach the tasks, DDP variables per task;
(d) the Slurm profile drives snakemake-executor-plugin-slurm (squeue status, no accounting);
(e) the real workflow (workflows/Snakefile) with --executor slurm on a tiny config.
"""
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

pytestmark = pytest.mark.slurm

ROOT = Path(__file__).resolve().parents[2]
SLURM_DIR = ROOT / "slurm"
PREFIX = Path(sys.executable).parent.parent  # the environment running the tests: what jobs activate
DATASETS = ("configs", "chain", "traj", "history/hmc/dH", "history/hmc/accepted")


def _env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "SBATCH_", "SRUN_"))}
    env.update(QCDHPC_ENV=str(PREFIX), QCDHPC_SRUN_TIMEOUT="240",
               PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    env.update({k: str(v) for k, v in extra.items()})
    return env


def _sbatch(script, *args, env, cwd, wait=True, timeout=300) -> subprocess.CompletedProcess:
    """sbatch [--wait] ARGS SCRIPT [SCRIPT-ARGS]; `script` is a path or [path, its arguments...]."""
    script = [script] if not isinstance(script, list) else script
    cmd = ["sbatch", "--parsable", *(["--wait"] if wait else []), *args, *map(str, script)]
    return subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout)


def _job(jobid: str) -> dict:
    r = subprocess.run(["scontrol", "-o", "show", "job", jobid], capture_output=True, text=True,
                       timeout=30)
    return dict(kv.split("=", 1) for kv in r.stdout.split() if "=" in kv)


def _logs(cwd: Path) -> str:
    return "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')}" for p in sorted(cwd.glob("slurm-*.out")))


def _hmc_args(L=8, ntraj=10, therm=5, every=1, seed=11, ckpt=100):
    return dict(QCDHPC_KAPPA=0.2, QCDHPC_LAM=0.02, QCDHPC_L=L, QCDHPC_NTRAJ=ntraj, QCDHPC_THERM=therm,
                QCDHPC_EVERY=every, QCDHPC_SEED=seed, QCDHPC_CHECKPOINT_EVERY=ckpt)


def _cli_reference(tmp_path, out, a: dict, nchains: int):
    """The same ensemble, one process, no Slurm: bit-identical by construction (docs/data_formats.md)."""
    r = subprocess.run([sys.executable, "-m", "qcdhpc", "hmc", "--L", str(a["QCDHPC_L"]), "--kappa",
                        str(a["QCDHPC_KAPPA"]), "--lam", str(a["QCDHPC_LAM"]), "--nchains", str(nchains),
                        "--ntraj", str(a["QCDHPC_NTRAJ"]), "--therm", str(a["QCDHPC_THERM"]), "--every",
                        str(a["QCDHPC_EVERY"]), "--seed", str(a["QCDHPC_SEED"]), "--out", str(out),
                        "--quiet", "--checkpoint-seconds", "0",
                        "--checkpoint-every", str(a["QCDHPC_CHECKPOINT_EVERY"])],
                       env=_env(), cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr


def _assert_same_ensemble(a_path, b_path):
    with h5py.File(a_path) as a, h5py.File(b_path) as b:
        for name in DATASETS:
            np.testing.assert_array_equal(a[name][()], b[name][()], err_msg=name)


# ---- (a) ---------------------------------------------------------------------------------------------
def test_hmc_sbatch_two_mpi_ranks_then_measure(slurm_cluster, tmp_path):
    out = tmp_path / "ens.h5"
    a = _hmc_args()
    env = _env(QCDHPC_OUT=out, **a)
    r = _sbatch(SLURM_DIR / "hmc.sbatch", "--ntasks=2", "--mem-per-cpu=500M", "--time=30",
                env=env, cwd=tmp_path)
    assert r.returncode == 0, f"{r.stdout}{r.stderr}\n{_logs(tmp_path)}\n{slurm_cluster.logs()}"
    assert out.exists(), _logs(tmp_path)
    with h5py.File(out) as f:
        assert int(f.attrs["mpi_size"]) == 2, _logs(tmp_path)  # really 2 ranks, not 2 serial copies
        assert f["configs"].shape == (2 * 10, 8, 8)
        assert set(f["chain"][()]) == {0, 1}
    assert "srun" in _logs(tmp_path)

    ref = tmp_path / "ref.h5"
    _cli_reference(tmp_path, ref, a, nchains=2)
    _assert_same_ensemble(out, ref)

    obs = tmp_path / "obs.json"
    r = _sbatch([SLURM_DIR / "measure.sbatch", out], "--mem=500M", "--time=30",
                env=_env(QCDHPC_OUT=obs), cwd=tmp_path)
    assert r.returncode == 0, f"{r.stdout}{r.stderr}\n{_logs(tmp_path)}"
    import json

    result = json.loads(obs.read_text())
    assert result["n"] == 20 and "observables" in result


# ---- (b) ---------------------------------------------------------------------------------------------
def test_hmc_sbatch_signal_checkpoint_requeue_resume(slurm_cluster, tmp_path):
    """SIGUSR1 to the batch shell, as `--signal=B:USR1@S` sends before the time limit: the stage
    checkpoints (exit 75), the job requeues itself, the next run passes --resume and finishes."""
    out = tmp_path / "ens.h5"
    a = _hmc_args(ntraj=10000, therm=10, every=10, ckpt=200)
    r = _sbatch(SLURM_DIR / "hmc.sbatch", "--ntasks=2", "--mem-per-cpu=500M", "--time=30",
                env=_env(QCDHPC_OUT=out, **a), cwd=tmp_path, wait=False)
    assert r.returncode == 0, r.stderr
    jobid = r.stdout.strip().split(";")[0]

    # Signal once the CLI runs (its handlers are installed before the first checkpoint segment).
    first = out.with_name(out.name + ".partial") / "rank0000" / "seg000000.h5"
    deadline = time.monotonic() + 120
    while not first.exists():
        assert time.monotonic() < deadline, f"no checkpoint after 120 s\n{_logs(tmp_path)}"
        assert _job(jobid).get("JobState") in ("PENDING", "RUNNING", "CONFIGURING"), _logs(tmp_path)
        time.sleep(0.2)
    subprocess.run(["scancel", "--signal=USR1", "--batch", jobid], check=True, timeout=30)

    # Slurm holds a requeued job for ~120 s (BeginTime) before it may start again; skip the wait.
    deadline = time.monotonic() + 240
    released = False
    while True:
        job = _job(jobid)
        state = job.get("JobState")
        if state in ("COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY"):
            break
        if (state == "PENDING" and job.get("Reason") == "BeginTime" and int(job.get("Restarts", 0)) >= 1
                and not released):
            # Released at once, the restart raced with the clean-up of the previous run and the job
            # FAILED without output (seen here); give slurmd a few seconds first.
            time.sleep(5)
            subprocess.run(["scontrol", "update", f"jobid={jobid}", "starttime=now"], timeout=30)
            released = True
        assert time.monotonic() < deadline, f"job {jobid} stuck in {state}\n{_logs(tmp_path)}"
        time.sleep(0.5)
    log = _logs(tmp_path)
    assert state == "COMPLETED" and job.get("ExitCode") == "0:0", f"{job}\n{log}"
    assert int(job["Restarts"]) == 1, log
    assert "SIGUSR1 received: checkpoint written" in log, log
    assert "--resume" in log, log
    assert not out.with_name(out.name + ".partial").exists()

    ref = tmp_path / "unbroken.h5"
    _cli_reference(tmp_path, ref, a, nchains=2)
    _assert_same_ensemble(out, ref)
    with h5py.File(out) as f:
        assert int(f.attrs["mpi_size"]) == 2


# ---- (c) ---------------------------------------------------------------------------------------------
def test_train_sbatch_gpus_and_ddp_environment(slurm_cluster, tmp_path):
    """`qcdhpc train` is stood in for by a script that records what each DDP task sees."""
    if slurm_cluster.gpus < 2:
        pytest.skip("needs 2 fake GPUs")
    fake = tmp_path / "fake-qcdhpc"
    fake.write_text("#!/bin/bash\n"
                    'echo "$RANK $LOCAL_RANK $WORLD_SIZE $MASTER_ADDR $MASTER_PORT '
                    '${CUDA_VISIBLE_DEVICES:-none} $OMP_NUM_THREADS $*" > "task-$RANK.txt"\n')
    fake.chmod(0o755)
    r = _sbatch([SLURM_DIR / "train.sbatch", "x.h5", "--out", "run"], "--gres=gpu:2", "--ntasks-per-node=2",
                "--cpus-per-task=1", "--mem=500M", "--time=30", env=_env(QCDHPC_CMD=fake), cwd=tmp_path,
                timeout=120)
    assert r.returncode == 0, f"{r.stdout}{r.stderr}\n{_logs(tmp_path)}"
    seen = sorted((tmp_path / f"task-{i}.txt").read_text().split() for i in range(2))
    assert [s[:3] for s in seen] == [["0", "0", "2"], ["1", "1", "2"]], seen
    for s in seen:
        assert s[3] == slurm_cluster.node and s[4].isdigit()
        assert s[5] == "0,1", f"each task sees both GPUs of the node: {s}"
        assert s[6] == "1" and s[7:] == ["train", "x.h5", "--out", "run", "--resume"]


# ---- (d) ---------------------------------------------------------------------------------------------
PROFILE_SNAKEFILE = r'''
rule all:
    input: "obs.json"

rule hmc:
    output: "ens.h5"
    resources: tasks=2, mpi="srun", runtime=5, mem_mb=1000
    shell: "{resources.mpi} -n {resources.tasks} qcdhpc hmc --L 8 --kappa 0.2 --lam 0.02 --nchains 2 "
           "--ntraj 10 --therm 5 --seed 3 --out {output} --quiet"

rule measure:
    input: "ens.h5"
    output: "obs.json"
    resources: runtime=5, mem_mb=500
    shell: "qcdhpc measure {input} --out {output} --quiet"
'''


def _snakemake_with_slurm_plugin() -> str:
    """The venv's snakemake, skipping the test when it or the Slurm executor plugin is missing."""
    snakemake = shutil.which("snakemake", path=str(PREFIX / "bin"))
    if snakemake is None:
        pytest.skip("snakemake not installed in the test environment")
    pytest.importorskip("snakemake_executor_plugin_slurm", reason="snakemake-executor-plugin-slurm not installed")
    return snakemake


def test_slurm_profile_drives_executor_plugin(slurm_cluster, tmp_path):
    """The profile against this cluster (no accounting: squeue status), on a two-rule stand-in."""
    snakemake = _snakemake_with_slurm_plugin()
    (tmp_path / "Snakefile").write_text(PROFILE_SNAKEFILE)
    env = _env()
    env["PATH"] = f"{PREFIX / 'bin'}{os.pathsep}{env['PATH']}"
    env.update(OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
    r = subprocess.run([snakemake, "--profile", str(ROOT / "workflows/profiles/slurm"),
                        "--slurm-init-seconds-before-status-checks", "2", "--latency-wait", "5",
                        "--retries", "0"],
                       env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    logs = "\n".join(p.read_text(errors="replace") for p in tmp_path.glob("logs/slurm/**/*.log"))
    assert r.returncode == 0, f"{r.stdout[-3000:]}\n{r.stderr[-6000:]}\n{logs}"
    with h5py.File(tmp_path / "ens.h5") as f:
        assert int(f.attrs["mpi_size"]) == 2
    assert (tmp_path / "obs.json").exists()


# ---- (e) ---------------------------------------------------------------------------------------------
# One small physics point through every stage.  Sizes: the measure step needs >= 5 configurations per
# chain (20 here); L = 8 is divisible by 2**depth.  20 short epochs rather than 1-2: the samples of an
# untrained VE model have action-density errors in the hundreds, which `qcdhpc report` cannot format
# yet (qcdhpc/report/phi4.py fmt: negative precision for errors >= 100).
TINY_WORKFLOW_CONFIG = """\
results: {results}
qcdhpc: {qcdhpc}
points:
  sym: {{L: 8, kappa: 0.21, lam: 0.022}}
hmc:
  therm: 20
  every: 1
  ranks: 2
  mpi: srun
  runtime: 10
  train: {{nchains: 2, ntraj: 20, seed: 1}}
  test: {{nchains: 2, ntraj: 20, seed: 2}}
train: {{sde: ve, epochs: 20, batch: 8, lr: 0.003, channels: 4, depth: 1, device: cpu, threads: 1, runtime: 10}}
sample: {{n: 64, steps: 20, sampler: em, batch: 64, runtime: 10}}
"""


def test_workflow_with_slurm_executor(slurm_cluster, tmp_path):
    """The real workflow (workflows/Snakefile, HMC -> train -> sample -> measure -> report) with the
    Slurm profile and --executor slurm on a tiny config: every rule is a Slurm job, the HMC jobs run
    2 MPI ranks under srun."""
    import json

    snakemake = _snakemake_with_slurm_plugin()
    results = tmp_path / "results"
    config = tmp_path / "tiny.yaml"
    # The rules call config["qcdhpc"]: the venv's CLI by absolute path, whatever PATH the job gets.
    config.write_text(TINY_WORKFLOW_CONFIG.format(results=results, qcdhpc=PREFIX / "bin" / "qcdhpc"))
    env = _env()
    # sbatch exports the submitting environment: the jobs' `python -m snakemake` and srun's tasks
    # find the venv first on PATH.
    env["PATH"] = f"{PREFIX / 'bin'}{os.pathsep}{env['PATH']}"
    env.update(OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
    # Overrides of the profile, for speed only: status checks start 2 s after a submission instead of
    # 40 (the plugin keeps squeue while MinJobAge >= 3 x this: 600 >= 6 on the test cluster); outputs
    # are on a local disk (latency-wait 5); a failure should fail the test at once (retries 0).
    t0 = time.monotonic()
    r = subprocess.run([snakemake, "-s", str(ROOT / "workflows" / "Snakefile"),
                        "--profile", str(ROOT / "workflows" / "profiles" / "slurm"), "--executor", "slurm",
                        "--configfile", str(config),
                        "--slurm-init-seconds-before-status-checks", "2", "--latency-wait", "5",
                        "--retries", "0"],
                       env=env, cwd=tmp_path, capture_output=True, text=True, timeout=420)
    elapsed = time.monotonic() - t0
    logs = "\n".join(f"--- {p}\n{p.read_text(errors='replace')}"
                     for pattern in ("logs/slurm/**/*.log", "results/logs/*.log")
                     for p in sorted(tmp_path.glob(pattern)))
    assert r.returncode == 0, f"{r.stdout[-3000:]}\n{r.stderr[-8000:]}\n{logs}"
    print(f"workflow under Slurm: {elapsed:.0f} s", file=sys.stderr)

    # every rule ran as a Slurm job, the HMC ones as `srun -n 2`
    out = r.stdout + r.stderr
    for rule in ("hmc", "train", "sample", "measure", "report"):
        assert f"rule {rule}:" in out, out[-4000:]
    assert out.count("has been submitted with SLURM jobid") == 6, out[-4000:]  # 2 hmc + 4
    assert "srun -n 2 " in out, out[-4000:]
    for s in ("train", "test"):
        with h5py.File(results / "sym" / f"hmc_{s}.h5") as f:
            assert int(f.attrs["mpi_size"]) == 2, s  # really 2 MPI ranks, not 2 serial copies
            assert f["configs"].shape == (2 * 20, 8, 8) and set(f["chain"][()]) == {0, 1}

    obs = json.loads((results / "sym" / "observables.json").read_text())
    assert [e["label"] for e in obs["ensembles"]] == ["hmc_train", "hmc_test", "dm_samples"]
    for e in obs["ensembles"]:
        assert e["observables"]["M"]["value"] is not None, e["label"]
    assert (results / "sym" / "plots" / "hist_M.png").exists()
    assert (results / "sym" / "model" / "loss.png").exists()

    report = (results / "report.md").read_text()
    assert (results / "report.html").exists()
    assert "## sym" in report
    rows = [line for line in report.splitlines() if line.startswith("| ")]
    for name in ("Training (HMC)", "Testing (HMC)", "Generated (DM)"):
        assert any(line.startswith(f"| {name} |") for line in rows), report
