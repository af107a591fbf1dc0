# Monte Carlo ensembles: an HMC training set and an independent test set (other seed) per point.
# MPI: `resources.tasks` ranks launched with `resources.mpi` (mpirun locally, srun on Slurm); the
# run resumes from its checkpoint segments when Slurm requeues it (--resume is always safe).


rule hmc:
    output:
        f"{RESULTS}/{{point}}/hmc_{{set}}.h5",
    params:
        qcdhpc=QCDHPC,
        args=hmc_args,
        launch=mpi_launch,
    log:
        f"{RESULTS}/logs/hmc_{{point}}_{{set}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/hmc_{{point}}_{{set}}.tsv"
    threads: 1
    resources:
        mpi=config["hmc"]["mpi"],
        tasks=hmc_ranks(),
        mem_mb=2000,
        runtime=config["hmc"]["runtime"],
    conda:
        "../envs/qcdhpc.yaml"
    shell:
        "OMP_NUM_THREADS={threads} {params.launch} {params.qcdhpc} hmc {params.args} "
        "--out {output} --resume --quiet > {log} 2>&1"
