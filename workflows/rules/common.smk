# Shared helpers: config validation (schema defaults filled in), paths, CLI argument strings.
import importlib.util
import shutil
import sys

from snakemake.utils import validate


validate(config, schema=os.path.join(workflow.basedir, "schemas", "config.schema.yaml"))

RESULTS = config["results"]
QCDHPC = config["qcdhpc"]
POINTS = list(config.get("points") or {})
SETS = ("train", "test")


wildcard_constraints:
    point="|".join(POINTS) or "(?!)",  # no φ⁴ points: the φ⁴ rules match nothing
    set="train|test",


def point_dir(point):
    return f"{RESULTS}/{point}"


def hmc_args(wildcards):
    """`qcdhpc hmc` options of one ensemble: the point's action + the set's statistics and seed."""
    p, h = config["points"][wildcards.point], config["hmc"]
    s = h[wildcards.set]
    return (f"--L {p['L']} --kappa {p['kappa']} --lam {p['lam']} --nchains {s['nchains']} "
            f"--ntraj {s['ntraj']} --therm {h['therm']} --every {h['every']} --nmd {h['nmd']} "
            f"--tau {h['tau']} --integrator {h['integrator']} --seed {s['seed']} --dtype {h['dtype']} "
            f"--start {p.get('start', 'hot')}")


def hmc_ranks():
    """MPI ranks per HMC job; one where this machine has no launcher or no mpi4py (a laptop
    without MPI still runs the workflow: the ensemble is the same, only slower)."""
    ranks, launcher = config["hmc"]["ranks"], config["hmc"]["mpi"].split()[0]
    if ranks > 1 and (shutil.which(launcher) is None or importlib.util.find_spec("mpi4py") is None):
        print(f"qcdhpc workflow: no '{launcher}' or no mpi4py here: HMC runs as 1 rank", file=sys.stderr)
        return 1
    return ranks


def mpi_launch(wildcards, resources):
    """Launcher prefix of MPI rules: `<mpi> -n <tasks>` with more than one rank, nothing otherwise."""
    return f"{resources.mpi} -n {resources.tasks}" if int(resources.tasks) > 1 else ""


def point_section(wildcards, section):
    """config[section] with the point's own `section:` entries on top (per-point overrides)."""
    return {**config[section], **config["points"][wildcards.point].get(section, {})}


def _switch(name, on):
    return f"--{'' if on else 'no-'}{name}"


def train_args(wildcards):
    """`qcdhpc train` options of this point."""
    t = point_section(wildcards, "train")
    sigma = f"--sigma-max {t['sigma_max']} --sigma-min {t['sigma_min']} " if t.get("sigma_max") else ""
    return (f"--sde {t['sde']} {sigma}--epochs {t['epochs']} --batch {t['batch']} --lr {t['lr']} "
            f"--channels {t['channels']} --depth {t['depth']} --baseline {t['baseline']} --seed {t['seed']} "
            f"{_switch('global-context', t['global_context'])} --zero-mode-weight {t['zero_mode_weight']} "
            f"{_switch('z2-equivariant', t['z2_equivariant'])} --device {t['device']}")


def sample_args(wildcards):
    """`qcdhpc sample` options of this point (on the device the point trained on)."""
    s = point_section(wildcards, "sample")
    return (f"--n {s['n']} --steps {s['steps']} --sampler {s['sampler']} --batch {s['batch']} "
            f"--seed {s['seed']} --device {point_section(wildcards, 'train')['device']}")
