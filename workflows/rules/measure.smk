# Observables of training HMC, test HMC and DM samples side by side (Γ-method / jackknife errors).


rule measure:
    input:
        train=f"{RESULTS}/{{point}}/hmc_train.h5",
        test=f"{RESULTS}/{{point}}/hmc_test.h5",
        dm=f"{RESULTS}/{{point}}/dm_samples.h5",
    output:
        json=f"{RESULTS}/{{point}}/observables.json",
        pyerrors=f"{RESULTS}/{{point}}/observables.pyerrors.json.gz",  # the Obs, for later correlated fits
        plots=directory(f"{RESULTS}/{{point}}/plots"),
    params:
        qcdhpc=QCDHPC,
    log:
        f"{RESULTS}/logs/measure_{{point}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/measure_{{point}}.tsv"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    conda:
        "../envs/qcdhpc.yaml"
    shell:
        "{params.qcdhpc} measure {input.train} {input.test} {input.dm} --labels hmc_train,hmc_test,dm_samples "
        "--out {output.json} --plots {output.plots} > {log} 2>&1"
