# Complex Langevin branch (issue #13): the quartic one-site model CL -> measure -> SBM/EBM model
# ensemble -> samples -> the seeds' moments table; and the Bose gas <n>(mu) scan on an N^d lattice.
# Both parts are optional: a config without cl.quartic (cl.bose) leaves that part out.

CL = config.get("cl", {})
CLQ = CL.get("quartic")
CLB = CL.get("bose") or {}  # named scans: {name: {N, d, m, lam, mus, ...}}
CLDIR = f"{RESULTS}/cl"
ROW_NET = {"sbm": "mlp", "ebm": "energy", "mcmc": "energy"}


wildcard_constraints:
    net="mlp|energy",
    row="sbm|ebm|mcmc",
    seed=r"\d+",
    mu=r"-?[0-9.]+",
    scan="|".join(CLB) or "none",


def langevin_args(c):
    """`qcdhpc cl` options shared by both models."""
    return (f"--walkers {c['walkers']} --therm {c['therm']} --steps {c['steps']} --every {c['every']} "
            f"--dt {c['dt']} --scheme {c['scheme']} --seed {c['seed']}" + (" --adaptive" if c.get("adaptive") else ""))


def cl_model_files():
    """Model files of the ensemble: `models` per row, seeds 0..models-1."""
    return {net: [f"{CLDIR}/quartic/models/{net}_{i}/model.pt" for i in range(CLQ["models"])]
            for net in ("mlp", "energy")}


def cl_sample_files(row):
    return [f"{CLDIR}/quartic/samples/{row}_{i}.h5" for i in range(CLQ["models"])]


def cl_sample_args(wildcards):
    s = CLQ["sample"]
    seed = 1000 * ("sbm ebm mcmc".split().index(wildcards.row) + 1) + int(wildcards.seed)
    if wildcards.row == "mcmc":  # MALA on exp(-E(x, t_min)) of the energy model
        return (f"--sampler mala --n {s['n']} --eps {s['eps']} --mala-step {s['mala_step']} "
                f"--burn-in {s['burn_in']} --batch {s['batch']} --seed {seed}")
    # reverse process to t = eps without denoising: VE noise is circular, moments of z are unchanged
    # at any noise level (docs/diffusion.md); the sampler's time grid follows the model (log-s for edm)
    return (f"--sampler {s.get('sampler', 'ode')} --n {s['n']} --steps {s['steps']} --eps {s['eps']} "
            f"--no-denoise --batch {s['batch']} --seed {seed}")


def cl_bose_dirs(scan):
    return [f"{CLDIR}/bose_{scan}/mu_{float(mu):g}" for mu in CLB[scan]["mus"]]


def cl_report_dirs():
    """CL directories the report reads (see rules/report.smk)."""
    return ([f"{CLDIR}/quartic"] if CLQ else []) + [f"{CLDIR}/bose_{scan}" for scan in CLB]


def cl_report_inputs():
    files = []
    if CLQ:
        files += [f"{CLDIR}/quartic/observables.json"]
        files += [f"{CLDIR}/quartic/table.json"] if CLQ["models"] > 0 else []
    files += [f"{d}/observables.json" for scan in CLB for d in cl_bose_dirs(scan)]
    return files


if CLQ:

    rule cl_quartic:
        output:
            f"{CLDIR}/quartic/cl.h5",
        params:
            qcdhpc=QCDHPC,
            args=f"--sigma {CLQ['sigma']} --lam {CLQ['lam']} " + langevin_args(CLQ),
        log:
            f"{RESULTS}/logs/cl_quartic.log",
        benchmark:
            f"{RESULTS}/benchmarks/cl_quartic.tsv"
        threads: CL.get("threads", 2)
        resources:
            mem_mb=4000,
            runtime=CL.get("runtime", 60),
        conda:
            "../envs/qcdhpc.yaml"
        shell:
            "OMP_NUM_THREADS={threads} {params.qcdhpc} cl --model quartic {params.args} --out {output} "
            "--resume --overwrite --quiet > {log} 2>&1"

    rule cl_quartic_measure:
        input:
            f"{CLDIR}/quartic/cl.h5",
        output:
            json=f"{CLDIR}/quartic/observables.json",
            plots=directory(f"{CLDIR}/quartic/plots"),
        params:
            qcdhpc=QCDHPC,
        log:
            f"{RESULTS}/logs/cl_quartic_measure.log",
        threads: 1
        resources:
            mem_mb=8000,
            runtime=30,
        conda:
            "../envs/qcdhpc.yaml"
        shell:
            "{params.qcdhpc} measure {input} --out {output.json} --plots {output.plots} > {log} 2>&1"

    rule cl_model:
        input:
            f"{CLDIR}/quartic/cl.h5",
        output:
            f"{CLDIR}/quartic/models/{{net}}_{{seed}}/model.pt",
        params:
            qcdhpc=QCDHPC,
            run_dir=lambda wc: f"{CLDIR}/quartic/models/{wc.net}_{wc.seed}",
            args=lambda wc: (f"--net {wc.net} --seed {wc.seed} --epochs {CLQ['train']['epochs']} "
                             f"--batch {CLQ['train']['batch']} --lr {CLQ['train']['lr']} "
                             f"--hidden {CLQ['train']['hidden']} --n-layers {CLQ['train']['n_layers']} "
                             f"--max-configs {CLQ['train']['points']} {CLQ['train'].get('extra', '')}"),
        log:
            f"{RESULTS}/logs/cl_model_{{net}}_{{seed}}.log",
        benchmark:
            f"{RESULTS}/benchmarks/cl_model_{{net}}_{{seed}}.tsv"
        threads: CLQ["train"].get("threads", 1)
        resources:
            mem_mb=4000,
            runtime=CLQ["train"].get("runtime", 120),
        conda:
            "../envs/qcdhpc.yaml"
        shell:
            "OMP_NUM_THREADS={threads} {params.qcdhpc} train {input} --out {params.run_dir} {params.args} "
            "--device cpu --resume --restart-stale --quiet > {log} 2>&1"

    rule cl_samples:
        input:
            lambda wc: f"{CLDIR}/quartic/models/{ROW_NET[wc.row]}_{wc.seed}/model.pt",
        output:
            f"{CLDIR}/quartic/samples/{{row}}_{{seed}}.h5",
        params:
            qcdhpc=QCDHPC,
            args=cl_sample_args,
        log:
            f"{RESULTS}/logs/cl_samples_{{row}}_{{seed}}.log",
        threads: CLQ["train"].get("threads", 1)
        resources:
            mem_mb=4000,
            runtime=60,
        conda:
            "../envs/qcdhpc.yaml"
        shell:
            "OMP_NUM_THREADS={threads} {params.qcdhpc} sample {input} {params.args} --device cpu --out {output} "
            "--overwrite --resume --quiet > {log} 2>&1"

    rule cl_table:
        input:
            cl=f"{CLDIR}/quartic/observables.json",
            walkers=f"{CLDIR}/quartic/cl.h5",
            sbm=cl_sample_files("sbm"),
            ebm=cl_sample_files("ebm"),
            mcmc=cl_sample_files("mcmc"),
            sbm_models=cl_model_files()["mlp"],
            ebm_models=cl_model_files()["energy"],
        output:
            json=f"{CLDIR}/quartic/table.json",
            md=f"{CLDIR}/quartic/table.md",
            plots=directory(f"{CLDIR}/quartic/table_plots"),
        params:
            qcdhpc=QCDHPC,
            t_min=CLQ["sample"]["eps"],
        log:
            f"{RESULTS}/logs/cl_table.log",
        threads: 1
        resources:
            mem_mb=4000,
            runtime=30,
        conda:
            "../envs/qcdhpc.yaml"
        shell:
            "{params.qcdhpc} cl-table --cl {input.cl} --walkers {input.walkers} --sbm {input.sbm} "
            "--ebm {input.ebm} --mcmc {input.mcmc} --sbm-models {input.sbm_models} "
            "--ebm-models {input.ebm_models} --t-min {params.t_min} --out {output.json} "
            "--plots {output.plots} > {log} 2>&1"


if CLB:

    rule cl_bose:
        output:
            f"{CLDIR}/bose_{{scan}}/mu_{{mu}}/cl.h5",
        params:
            qcdhpc=QCDHPC,
            args=lambda wc: (f"--N {CLB[wc.scan]['N']} --d {CLB[wc.scan]['d']} --m {CLB[wc.scan]['m']} "
                             f"--lam {CLB[wc.scan]['lam']} --mu {wc.mu} " + langevin_args(CLB[wc.scan])),
        log:
            f"{RESULTS}/logs/cl_bose_{{scan}}_mu_{{mu}}.log",
        benchmark:
            f"{RESULTS}/benchmarks/cl_bose_{{scan}}_mu_{{mu}}.tsv"
        threads: 1
        resources:
            mem_mb=4000,
            runtime=CL.get("runtime", 60),
        conda:
            "../envs/qcdhpc.yaml"
        shell:
            "OMP_NUM_THREADS={threads} {params.qcdhpc} cl --model bose {params.args} --out {output} "
            "--resume --overwrite --quiet > {log} 2>&1"

    rule cl_bose_measure:
        input:
            f"{CLDIR}/bose_{{scan}}/mu_{{mu}}/cl.h5",
        output:
            json=f"{CLDIR}/bose_{{scan}}/mu_{{mu}}/observables.json",
            plots=directory(f"{CLDIR}/bose_{{scan}}/mu_{{mu}}/plots"),
        params:
            qcdhpc=QCDHPC,
        log:
            f"{RESULTS}/logs/cl_bose_measure_{{scan}}_mu_{{mu}}.log",
        threads: 1
        resources:
            mem_mb=4000,
            runtime=30,
        conda:
            "../envs/qcdhpc.yaml"
        shell:
            "{params.qcdhpc} measure {input} --out {output.json} --plots {output.plots} > {log} 2>&1"
