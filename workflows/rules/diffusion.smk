# Score-based diffusion model: train on the HMC training set, then sample independent configurations.


rule train:
    input:
        f"{RESULTS}/{{point}}/hmc_train.h5",
    output:
        model=f"{RESULTS}/{{point}}/model/model.pt",
        loss=f"{RESULTS}/{{point}}/model/loss.png",
    params:
        qcdhpc=QCDHPC,
        run_dir=lambda wc: f"{RESULTS}/{wc.point}/model",
        args=train_args,
    log:
        f"{RESULTS}/logs/train_{{point}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/train_{{point}}.tsv"
    threads: config["train"]["threads"]
    resources:
        mem_mb=8000,
        runtime=config["train"]["runtime"],
    conda:
        "../envs/qcdhpc.yaml"
    shell:
        "OMP_NUM_THREADS={threads} {params.qcdhpc} train {input} --out {params.run_dir} {params.args} "
        "--resume --restart-stale --quiet > {log} 2>&1"


rule sample:
    input:
        f"{RESULTS}/{{point}}/model/model.pt",
    output:
        f"{RESULTS}/{{point}}/dm_samples.h5",
    params:
        qcdhpc=QCDHPC,
        args=sample_args,
    log:
        f"{RESULTS}/logs/sample_{{point}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/sample_{{point}}.tsv"
    threads: config["train"]["threads"]
    resources:
        mem_mb=4000,
        runtime=config["sample"]["runtime"],
    conda:
        "../envs/qcdhpc.yaml"
    shell:
        "OMP_NUM_THREADS={threads} {params.qcdhpc} sample {input} {params.args} --out {output} "
        "--overwrite --resume --quiet > {log} 2>&1"
