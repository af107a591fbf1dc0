"""A real one-node Slurm cluster on this machine, for tests of the sbatch templates and the executor plugin.

Usage::

    with SlurmCluster() as cluster:      # raises SlurmUnavailable (a reason to skip) when it cannot start
        subprocess.run(["sbatch", "--wait", ...])

What it does (as root only; nothing here is meant for a shared machine):
  * installs Debian's slurmctld slurmd slurm-client munge with apt-get when a binary is missing;
  * runs its own munged on a private socket and key under ROOT (default /tmp/qcdhpc-slurm), so a system
    munged, if any, is left alone;
  * writes /etc/slurm/slurm.conf and gres.conf.  They must be at the default path: the executor plugin's
    job step (and anything else started without our environment) drops SLURM_CONF.  An existing file
    is backed up to *.qcdhpc-backup and restored at teardown;
  * one node named `hostname -s` with CPUs = nproc, RealMemory from /proc/meminfo, no cgroups
    (proctrack/linuxproc, task/none), no accounting, select/cons_tres, MpiDefault=pmix when
    `srun --mpi=list` offers it (else pmi2), and fake GPUs: /dev/fakegpuN are mknod aliases of /dev/null
    declared as gres gpu, so `--gres=gpu:N` jobs get CUDA_VISIBLE_DEVICES;
  * starts munged, slurmctld, slurmd in the foreground under subprocess.Popen (exact PIDs, no pid-file
    guessing), waits until sinfo shows the node idle, and warms up with `timeout 60 srun -n1 true`
    (a first PMIx srun once hung on these machines);
  * teardown cancels the jobs, stops ONLY the processes it started (by PID), restores the config.

Leftovers of an earlier run that died without teardown are recognised by an environment marker
(QCDHPC_SLURM_HARNESS=ROOT in /proc/PID/environ) and stopped; a slurmctld/slurmd without the marker
is somebody else's, and the harness refuses to start (SlurmUnavailable) rather than touch it.
"""
from __future__ import annotations

import atexit
import fcntl
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

DEFAULT_ROOT = Path(os.environ.get("QCDHPC_SLURM_TEST_DIR", "/tmp/qcdhpc-slurm"))
ETC = Path("/etc/slurm")
MARKER = "# written by qcdhpc tests/slurm/slurm_cluster.py (restored/removed at teardown)"
PACKAGES = ["slurmctld", "slurmd", "slurm-client", "munge"]
BINARIES = ["slurmctld", "slurmd", "sbatch", "srun", "squeue", "sinfo", "scontrol", "scancel",
            "munged", "munge"]
DAEMONS = ("munged", "slurmctld", "slurmd")
ENV_MARKER = "QCDHPC_SLURM_HARNESS"
PARTITION = "debug"
# The executor plugin polls with squeue; a finished job must stay visible to squeue for longer than its
# longest poll interval (it grows up to 180 s) and ≥ 3× its initial interval, or the plugin falls back
# to sacct, which has no data without accounting.
MIN_JOB_AGE = 600


class SlurmUnavailable(RuntimeError):
    """Slurm cannot be set up here; the message is the reason to skip."""


def _run(cmd, timeout=60, check=False, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=check, **kw)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie is not alive for our purposes
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"
    except (OSError, IndexError):
        return False


def _proc_env(pid: int) -> dict:
    try:
        raw = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return {}
    return dict(kv.split("=", 1) for kv in raw.decode(errors="replace").split("\0") if "=" in kv)


def _proc_name(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def _stop_pid(pid: int, timeout: float = 15.0) -> None:
    """SIGTERM, then SIGKILL after `timeout`, one PID (which this harness started)."""
    if not _alive(pid):
        return
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _alive(pid):
            return
        time.sleep(0.1)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("", port))
        except OSError:
            return False
    return True


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("", 0))
        return s.getsockname()[1]


def ensure_installed(log=print) -> None:
    """Install the Debian packages if a binary is missing (root + apt-get only)."""
    missing = [b for b in BINARIES if shutil.which(b) is None]
    if not missing:
        return
    if os.geteuid() != 0:
        raise SlurmUnavailable(f"Slurm not installed ({', '.join(missing)} missing) and not root")
    if shutil.which("apt-get") is None:
        raise SlurmUnavailable(f"Slurm not installed ({', '.join(missing)} missing) and no apt-get")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    cmd = ["apt-get", "install", "-y", "-q", "--no-install-recommends", *PACKAGES]
    log(f"[slurm-harness] installing {' '.join(PACKAGES)} with apt-get")
    r = _run(cmd, timeout=900, env=env)
    if r.returncode != 0:  # stale package lists: update once and retry
        _run(["apt-get", "update", "-q"], timeout=600, env=env)
        r = _run(cmd, timeout=900, env=env)
    missing = [b for b in BINARIES if shutil.which(b) is None]
    if r.returncode != 0 or missing:
        raise SlurmUnavailable(f"apt-get install {' '.join(PACKAGES)} failed (rc {r.returncode}, missing "
                               f"{missing}): {r.stderr.strip()[-500:]}")


class SlurmCluster:
    def __init__(self, root: Path | str = DEFAULT_ROOT, cpus: int | None = None, gpus: int = 2,
                 startup_timeout: float = 60.0, log=print):
        self.root = Path(root)
        self.cpus = cpus or os.cpu_count() or 1
        self.gpus = gpus
        self.startup_timeout = startup_timeout
        self.log = log
        self.node = socket.gethostname().split(".")[0]
        self.partition = PARTITION
        self.mpi_default: str | None = None
        self.procs: dict[str, subprocess.Popen] = {}
        self._lock_fd: int | None = None
        self._etc_files: dict[Path, Path | None] = {}  # config file -> its backup (None: none existed)
        self._created_devices: list[Path] = []
        self._created_etc = False
        self._started = False

    # ---- public ------------------------------------------------------------------------------------
    @property
    def env(self) -> dict:
        """Environment for clients: the default config path is used; nothing extra needed."""
        return dict(os.environ)

    def start(self) -> "SlurmCluster":
        if not Path("/proc").is_dir() or os.name != "posix":
            raise SlurmUnavailable("needs Linux")
        if os.geteuid() != 0:
            raise SlurmUnavailable("needs root (the test cluster runs slurmd as root, without cgroups)")
        ensure_installed(self.log)
        self.root.mkdir(parents=True, exist_ok=True)
        self._lock()
        atexit.register(self.stop)  # also when the fixture's finaliser never runs (e.g. a crash)
        try:
            self._stop_leftovers()
            self._refuse_foreign_daemons()
            self._fresh_dirs()
            self._fake_gpus()
            self._start_munge()
            self.ports = [p if _port_free(p) else _free_port() for p in (6817, 6818)]
            self._write_config(mpi_default="none")
            self.mpi_default = self._choose_mpi()
            self._write_config(mpi_default=self.mpi_default)
            self._started = True
            self._start_slurm()
            self._wait_idle()
            self._warm_up()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Cancel jobs, stop the daemons this object started (by PID), restore /etc/slurm."""
        if self._started and "slurmctld" in self.procs and self.procs["slurmctld"].poll() is None:
            _run(["scancel", "--full", "--partition", self.partition], timeout=30)
            deadline = time.monotonic() + 30  # let slurmd reap the job steps before it goes
            while time.monotonic() < deadline:
                r = _run(["squeue", "-h", "-o", "%i", "-t", "PD,R,CG,S"], timeout=15)
                if r.returncode != 0 or not r.stdout.strip():
                    break
                time.sleep(0.5)
        for name in ("slurmd", "slurmctld", "munged"):  # reverse start order
            p = self.procs.pop(name, None)
            if p is not None:
                _stop_pid(p.pid)
                try:
                    p.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    pass
        self._restore_etc()
        for dev in self._created_devices:
            dev.unlink(missing_ok=True)
        self._created_devices = []
        self._started = False
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def logs(self, tail: int = 40) -> str:
        out = []
        for name in ("slurmctld", "slurmd", "munged"):
            f = self.root / "log" / f"{name}.log"
            if f.exists():
                lines = f.read_text(errors="replace").splitlines()[-tail:]
                out.append(f"--- {f} (last {len(lines)} lines)\n" + "\n".join(lines))
        return "\n".join(out)

    # ---- steps -------------------------------------------------------------------------------------
    def _lock(self) -> None:
        """One harness per machine at a time (e.g. two pytest sessions)."""
        self._lock_fd = os.open(self.root / "lock", os.O_CREAT | os.O_RDWR, 0o600)
        deadline = time.monotonic() + 300  # a whole Slurm test session of another pytest
        while True:
            try:
                fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                if time.monotonic() > deadline:
                    os.close(self._lock_fd)
                    self._lock_fd = None
                    raise SlurmUnavailable(f"another test Slurm holds {self.root}/lock")
                time.sleep(1)

    def _our_leftovers(self) -> list[int]:
        pids = []
        for d in Path("/proc").iterdir():
            if d.name.isdigit() and _proc_name(int(d.name)) in DAEMONS + ("slurmstepd",):
                if _proc_env(int(d.name)).get(ENV_MARKER) == str(self.root):
                    pids.append(int(d.name))
        return pids

    def _stop_leftovers(self) -> None:
        # slurmstepd of leftover jobs inherit the marker from our slurmd; they go too.
        for pid in self._our_leftovers():
            self.log(f"[slurm-harness] stopping leftover {_proc_name(pid)} (pid {pid}) of an earlier run")
            _stop_pid(pid, timeout=10)

    def _refuse_foreign_daemons(self) -> None:
        for d in Path("/proc").iterdir():
            if d.name.isdigit() and _proc_name(int(d.name)) in ("slurmctld", "slurmd"):
                if _proc_env(int(d.name)).get(ENV_MARKER) != str(self.root):
                    raise SlurmUnavailable(f"a {_proc_name(int(d.name))} not started by this harness is "
                                           f"running (pid {d.name}); not touching it")

    def _fresh_dirs(self) -> None:
        # Job state of an earlier run would resurrect its jobs: start from empty state every time.
        for sub in ("state", "spool", "log", "munge"):
            shutil.rmtree(self.root / sub, ignore_errors=True)
            (self.root / sub).mkdir(parents=True)
        os.chmod(self.root / "munge", 0o700)

    def _fake_gpus(self) -> None:
        for i in range(self.gpus):
            dev = Path(f"/dev/fakegpu{i}")
            if dev.exists():
                st = dev.stat()
                if not (os.major(st.st_rdev), os.minor(st.st_rdev)) == (1, 3):
                    raise SlurmUnavailable(f"{dev} exists and is not a /dev/null alias")
                continue
            try:
                os.mknod(dev, 0o666 | 0o020000, os.makedev(1, 3))  # S_IFCHR, same device as /dev/null
            except OSError as exc:
                raise SlurmUnavailable(f"cannot mknod {dev}: {exc}")
            self._created_devices.append(dev)

    def _popen(self, name: str, cmd: list[str]) -> subprocess.Popen:
        logf = open(self.root / "log" / f"{name}.stdout", "ab")
        env = {**os.environ, ENV_MARKER: str(self.root)}
        env.pop("SLURM_CONF", None)
        # Own session: a Ctrl-C of pytest must not kill the daemons before teardown has cancelled jobs.
        p = subprocess.Popen(cmd, stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                             env=env, start_new_session=True, cwd=self.root)
        logf.close()
        self.procs[name] = p
        return p

    def _start_munge(self) -> None:
        d = self.root / "munge"
        key = d / "munge.key"
        key.write_bytes(os.urandom(1024))
        os.chmod(key, 0o400)
        self.munge_socket = d / "munge.socket"
        self._popen("munged", ["munged", "--foreground", "--force", f"--socket={self.munge_socket}",
                               f"--key-file={key}", f"--pid-file={d / 'munged.pid'}",
                               f"--log-file={self.root / 'log' / 'munged.log'}",
                               f"--seed-file={d / 'munged.seed'}"])
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.procs["munged"].poll() is not None:
                raise SlurmUnavailable("munged exited at start:\n" + self.logs())
            if self.munge_socket.exists():
                r = _run(f"munge -n -S {self.munge_socket} | unmunge -S {self.munge_socket}",
                         shell=True, timeout=10)
                if r.returncode == 0:
                    return
            time.sleep(0.2)
        raise SlurmUnavailable("munged did not answer within 20 s:\n" + self.logs())

    def _config_text(self, mpi_default: str) -> str:
        mem_kb = int(re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text()).group(1))
        real_mb = max(256, int(mem_kb / 1024 * 0.9))  # slurmd drains a node that reports less
        r, ports = self.root, self.ports
        gres = f" Gres=gpu:{self.gpus}" if self.gpus else ""
        return f"""{MARKER}
ClusterName=qcdhpc-test
SlurmctldHost={self.node}
SlurmctldPort={ports[0]}
SlurmdPort={ports[1]}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={self.munge_socket}
StateSaveLocation={r}/state
SlurmdSpoolDir={r}/spool
SlurmctldPidFile={r}/state/slurmctld.pid
SlurmdPidFile={r}/spool/slurmd.pid
SlurmctldLogFile={r}/log/slurmctld.log
SlurmdLogFile={r}/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
# no cgroups on these machines
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
MpiDefault={mpi_default}
GresTypes=gpu
# the executor plugin polls squeue: keep finished jobs visible long enough
MinJobAge={MIN_JOB_AGE}
ReturnToService=2
SlurmdParameters=config_overrides
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=2
KillWait=10
InactiveLimit=0
Waittime=0
JobRequeue=1
NodeName={self.node} NodeAddr=127.0.0.1 CPUs={self.cpus} RealMemory={real_mb}{gres} State=UNKNOWN
PartitionName={PARTITION} Nodes={self.node} Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO
"""

    def _install_etc(self, path: Path, text: str) -> None:
        if path not in self._etc_files:
            backup = path.with_name(path.name + ".qcdhpc-backup")
            if path.exists() and MARKER not in path.read_text(errors="replace"):
                shutil.copy2(path, backup)  # a real config: keep it
                self._etc_files[path] = backup
            elif backup.exists():
                self._etc_files[path] = backup  # our leftover over a backup from a crashed run
            else:
                self._etc_files[path] = None
        path.write_text(text)

    def _restore_etc(self) -> None:
        for path, backup in self._etc_files.items():
            if backup is not None and backup.exists():
                os.replace(backup, path)
            elif path.exists() and MARKER in path.read_text(errors="replace"):
                path.unlink()
        self._etc_files = {}

    def _write_config(self, mpi_default: str) -> None:
        if not ETC.exists():
            ETC.mkdir(parents=True)
        self._install_etc(ETC / "slurm.conf", self._config_text(mpi_default))
        lines = [MARKER] + [f"NodeName={self.node} Name=gpu File=/dev/fakegpu{i}" for i in range(self.gpus)]
        self._install_etc(ETC / "gres.conf", "\n".join(lines) + "\n")

    def _choose_mpi(self) -> str:
        r = _run(["srun", "--mpi=list"], timeout=30)
        offered = r.stdout + r.stderr
        for name in ("pmix", "pmi2"):
            if re.search(rf"\b{name}\b", offered):
                return name
        return "none"

    def _start_slurm(self) -> None:
        # -D: foreground, so Popen holds the real PID; -c (slurmctld): ignore any saved state.
        self._popen("slurmctld", ["slurmctld", "-D", "-c", "-i"])
        self._popen("slurmd", ["slurmd", "-D"])

    def _node_state(self) -> str:
        r = _run(["sinfo", "-h", "-N", "-n", self.node, "-o", "%T"], timeout=15)
        return r.stdout.strip() if r.returncode == 0 else ""

    def _wait_idle(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        resumed = False
        state = ""
        while time.monotonic() < deadline:
            for name, p in self.procs.items():
                if p.poll() is not None:
                    raise SlurmUnavailable(f"{name} exited with {p.returncode} at start:\n" + self.logs())
            state = self._node_state()
            if state.startswith("idle"):
                return
            if not resumed and re.match(r"(down|drain)", state):
                _run(["scontrol", "update", f"nodename={self.node}", "state=resume"], timeout=15)
                resumed = True
            time.sleep(0.5)
        raise SlurmUnavailable(f"node {self.node} not idle after {self.startup_timeout:.0f} s "
                               f"(state {state!r}):\n" + self.logs())

    def _warm_up(self) -> None:
        for attempt in (1, 2):
            r = _run(["timeout", "60", "srun", "-n1", "true"], timeout=90)
            if r.returncode == 0:
                return
            self.log(f"[slurm-harness] warm-up srun attempt {attempt} failed (rc {r.returncode}): "
                     f"{r.stderr.strip()[-300:]}")
            _run(["scancel", "--partition", self.partition], timeout=30)
        raise SlurmUnavailable("`srun -n1 true` does not work:\n" + self.logs())


if __name__ == "__main__":  # manual use: python tests/slurm/slurm_cluster.py  (Ctrl-C or kill to stop)
    def _interrupt(signum, frame):
        raise KeyboardInterrupt  # SIGTERM too: tear down instead of dying with the daemons up

    signal.signal(signal.SIGTERM, _interrupt)
    with SlurmCluster() as c:
        print(f"Slurm up: node {c.node}, partition {c.partition}, MpiDefault={c.mpi_default}, "
              f"logs in {c.root}/log. Ctrl-C to stop.")
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
