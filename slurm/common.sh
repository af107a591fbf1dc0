# shellcheck shell=bash
# Shared logic of the qcdhpc sbatch templates; sourced by slurm/*.sbatch, not run on its own.
#
# Environment (all optional):
#   QCDHPC_ENV          a virtualenv or conda prefix to activate (its bin/activate is sourced; a prefix
#                       without one is put first on PATH).  Default: none (use what is on PATH).
#   QCDHPC_MODULES      space-separated modules for `module load` (Lmod / environment-modules), loaded
#                       before QCDHPC_ENV, e.g. "openmpi/4.1 cuda/12.4".  Default: none.
#   QCDHPC_SETUP        shell code evaluated after the above (site hook: `conda activate x`, `spack load`).
#   QCDHPC_CMD          how to call the CLI (default: qcdhpc), e.g. "python -m qcdhpc".
#   QCDHPC_SRUN_TIMEOUT seconds after which `timeout` kills an srun (default: none).  Tests set it:
#                       a first PMIx srun once hung on our test machines.
#   QCDHPC_MPI          srun --mpi=TYPE (default: the cluster's MpiDefault).  Debian's Open MPI needs
#                       pmix; pmi2 fails in MPI_Init ("OMPI was not built with SLURM's PMI support").
#   QCDHPC_REQUEUE      1 (default): requeue the job when the stage checkpointed on our time-limit
#                       signal; 0: just exit 75 and let the user resubmit.
#   QCDHPC_MAX_REQUEUE  give up requeueing after this many restarts (default 20), so a stage that can
#                       never finish inside --time cannot loop forever.
#   QCDHPC_FORWARD_USR1_AS  signal sent to the stage when USR1 arrives (default USR1; workflow: TERM)
#   QCDHPC_RESUME       auto (default): pass --resume when the job was restarted (SLURM_RESTART_COUNT>0)
#                       or OUT.partial exists; 1: always; 0: never.
#
# Signal → checkpoint → requeue → resume:
#   The templates ask for `--signal=B:USR1@S`: S seconds before the time limit Slurm sends SIGUSR1 to
#   this batch shell only.  The stage runs in the background so that bash can run its trap at once (a
#   trap waits for a *foreground* child).  The trap forwards the signal to the stage: to all job steps
#   with `scancel --signal` (reaches every srun task even through a `timeout` wrapper, which would die
#   of SIGUSR1 itself), or with kill to a stage run without srun.  The CLI finishes its batch, writes a
#   checkpoint and exits 75 (EX_TEMPFAIL, EXIT_INTERRUPTED in qcdhpc/run/signals.py).  On 75 after
#   USR1 (or with no signal seen here) the job requeues itself (`scontrol requeue`), and the next run
#   passes --resume.  SIGTERM (scancel, or the hard limit with no USR1 before it) is forwarded too, so
#   the checkpoint is still written, but never requeues: a cancelled job must stay cancelled.

QCDHPC_EXIT_INTERRUPTED=75
QCDHPC_EXIT_USAGE=2

qcdhpc_log() { echo "[qcdhpc-slurm $(date -u +%FT%TZ) job ${SLURM_JOB_ID:-none}] $*" >&2; }

# --- environment --------------------------------------------------------------------------------------
qcdhpc_setup_env() {
    if [[ -n "${QCDHPC_MODULES:-}" ]]; then
        if ! type module >/dev/null 2>&1; then
            # batch shells are non-login: the module function may not be defined yet
            for f in /etc/profile.d/lmod.sh /etc/profile.d/modules.sh /usr/share/lmod/lmod/init/bash; do
                # shellcheck disable=SC1090
                [[ -r "$f" ]] && source "$f" && break
            done
        fi
        # shellcheck disable=SC2086  # word splitting wanted: a list of modules
        module load ${QCDHPC_MODULES} || { qcdhpc_log "module load ${QCDHPC_MODULES} failed"; exit 1; }
    fi
    if [[ -n "${QCDHPC_ENV:-}" ]]; then
        if [[ -r "${QCDHPC_ENV}/bin/activate" ]]; then
            # shellcheck disable=SC1091
            source "${QCDHPC_ENV}/bin/activate"
        elif [[ -d "${QCDHPC_ENV}/bin" ]]; then
            export PATH="${QCDHPC_ENV}/bin:${PATH}"
        else
            qcdhpc_log "QCDHPC_ENV=${QCDHPC_ENV} is not a virtualenv/conda prefix"; exit 1
        fi
    fi
    if [[ -n "${QCDHPC_SETUP:-}" ]]; then
        eval "${QCDHPC_SETUP}"
    fi
    QCDHPC_CMD=${QCDHPC_CMD:-qcdhpc}
    # shellcheck disable=SC2086
    if ! command -v ${QCDHPC_CMD%% *} >/dev/null 2>&1; then
        qcdhpc_log "'${QCDHPC_CMD}' not found: set QCDHPC_ENV to the environment with qcdhpc installed"
        exit 1
    fi

    # One thread per allocated CPU: OpenMP (our CPU kernels, torch) otherwise uses every core of the
    # node and ranks sharing a node oversubscribe it.
    export OMP_NUM_THREADS=${SLURM_CPUS_PER_TASK:-1}
    # Since Slurm 22.05 srun no longer inherits --cpus-per-task from sbatch; without this every task of
    # a step would get one CPU whatever the job asked for.
    if [[ -n "${SLURM_CPUS_PER_TASK:-}" ]]; then
        export SRUN_CPUS_PER_TASK=${SLURM_CPUS_PER_TASK}
    fi
    # Open MPI refuses to run as root unless told (containers, test clusters).
    if [[ "$(id -u)" == 0 ]]; then
        export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
    fi
    # Unbuffered Python output: the job log then shows progress as it happens.
    export PYTHONUNBUFFERED=1
}

# --- resume -----------------------------------------------------------------------------------------
# qcdhpc_want_resume OUT  → true when --resume should be passed for output OUT
qcdhpc_want_resume() {
    case "${QCDHPC_RESUME:-auto}" in
        1|yes|true|always) return 0 ;;
        0|no|false|never)  return 1 ;;
    esac
    [[ "${SLURM_RESTART_COUNT:-0}" -gt 0 ]] && return 0
    [[ -n "${1:-}" && -e "${1}.partial" ]] && return 0
    return 1
}

# --- running a stage with signal forwarding ---------------------------------------------------------
QCDHPC_CHILD=""       # PID of the background stage
QCDHPC_CHILD_SRUN=0   # 1 when the stage is (timeout +) srun: forward to job steps via scancel
QCDHPC_GOT_SIGNAL=""  # USR1 / TERM / INT when the batch shell received one

qcdhpc_forward() {
    local sig=$1
    QCDHPC_GOT_SIGNAL=${QCDHPC_GOT_SIGNAL:-$sig}
    [[ "$sig" == TERM || "$sig" == INT ]] && QCDHPC_GOT_SIGNAL=$sig  # a cancel overrides a USR1
    # A stage may want another signal than the one Slurm sends (snakemake: TERM, its graceful stop).
    [[ "$sig" == USR1 && -n "${QCDHPC_FORWARD_USR1_AS:-}" ]] && sig=$QCDHPC_FORWARD_USR1_AS
    qcdhpc_log "received SIG${1}; forwarding SIG${sig} to the stage so that it checkpoints"
    [[ -z "$QCDHPC_CHILD" ]] && return 0
    if [[ "$QCDHPC_CHILD_SRUN" == 1 && -n "${SLURM_JOB_ID:-}" ]]; then
        # all steps of this job but not the batch shell: every srun task gets it directly
        scancel --signal="$sig" "${SLURM_JOB_ID}" 2>/dev/null || kill -s "$sig" "$QCDHPC_CHILD" 2>/dev/null
    else
        kill -s "$sig" "$QCDHPC_CHILD" 2>/dev/null || true
    fi
}

# qcdhpc_srun [srun options...] -- command...   → echoes nothing; builds the srun command line in
# QCDHPC_SRUN (array) with the timeout wrapper and --mpi choice applied.
qcdhpc_srun_cmd() {
    QCDHPC_SRUN=()
    if [[ -n "${QCDHPC_SRUN_TIMEOUT:-}" ]]; then
        QCDHPC_SRUN+=(timeout --kill-after=30 "${QCDHPC_SRUN_TIMEOUT}")
    fi
    # --kill-on-bad-exit: one crashed rank ends the step instead of leaving the others in a collective.
    QCDHPC_SRUN+=(srun --kill-on-bad-exit=1)
    if [[ -n "${QCDHPC_MPI:-}" ]]; then
        QCDHPC_SRUN+=(--mpi="${QCDHPC_MPI}")
    fi
}

# qcdhpc_run_stage [--srun] command...  → runs it in the background, forwards USR1/TERM/INT, returns
# its exit status.
qcdhpc_run_stage() {
    QCDHPC_CHILD_SRUN=0
    if [[ "${1:-}" == --srun ]]; then
        QCDHPC_CHILD_SRUN=1
        shift
    fi
    trap 'qcdhpc_forward USR1' USR1
    trap 'qcdhpc_forward TERM' TERM
    trap 'qcdhpc_forward INT' INT
    qcdhpc_log "running: $*"
    "$@" &
    QCDHPC_CHILD=$!
    local rc
    # `wait` returns early (status >128) whenever a trapped signal arrives while the stage still runs;
    # keep waiting until it has exited.  Bash remembers the status of a reaped child, so the last
    # `wait` yields the stage's own exit status.
    while kill -0 "$QCDHPC_CHILD" 2>/dev/null; do
        wait "$QCDHPC_CHILD"
    done
    wait "$QCDHPC_CHILD"
    rc=$?
    QCDHPC_CHILD=""
    return "$rc"
}

# qcdhpc_finish RC  → exits the batch script, requeueing first when RC says "checkpointed, retry".
qcdhpc_finish() {
    local rc=$1
    if [[ "$rc" == "$QCDHPC_EXIT_INTERRUPTED" ]]; then
        if [[ "$QCDHPC_GOT_SIGNAL" == TERM || "$QCDHPC_GOT_SIGNAL" == INT ]]; then
            qcdhpc_log "stage checkpointed after SIG${QCDHPC_GOT_SIGNAL} (cancel or hard time limit): not" \
                       "requeueing; resubmit the same job to resume"
        elif [[ "${QCDHPC_REQUEUE:-1}" != 1 ]]; then
            qcdhpc_log "stage checkpointed; QCDHPC_REQUEUE=0, resubmit to resume"
        elif [[ "${SLURM_RESTART_COUNT:-0}" -ge "${QCDHPC_MAX_REQUEUE:-20}" ]]; then
            qcdhpc_log "stage checkpointed but the job was already restarted ${SLURM_RESTART_COUNT} times" \
                       "(QCDHPC_MAX_REQUEUE=${QCDHPC_MAX_REQUEUE:-20}): not requeueing"
        elif [[ -z "${SLURM_JOB_ID:-}" ]]; then
            qcdhpc_log "stage checkpointed (not under Slurm: rerun to resume)"
        else
            qcdhpc_log "stage checkpointed; requeueing job ${SLURM_JOB_ID}" \
                       "(restart $(( ${SLURM_RESTART_COUNT:-0} + 1 ))), it will resume"
            # After this Slurm ends the current run (the batch shell may get SIGTERM any moment):
            # nothing of importance may follow.
            trap '' TERM USR1
            if scontrol requeue "${SLURM_JOB_ID}"; then
                exit 0
            fi
            qcdhpc_log "scontrol requeue failed (job submitted with --no-requeue, or JobRequeue=0?)"
        fi
    elif [[ "$rc" == 124 && -n "${QCDHPC_SRUN_TIMEOUT:-}" ]]; then
        qcdhpc_log "srun killed by QCDHPC_SRUN_TIMEOUT=${QCDHPC_SRUN_TIMEOUT}"
    elif [[ "$rc" != 0 ]]; then
        qcdhpc_log "stage failed with exit code $rc"
    else
        qcdhpc_log "stage finished"
    fi
    exit "$rc"
}
