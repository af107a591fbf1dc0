# The comparison report over all physics points (markdown + HTML, figures linked).


rule report:
    input:
        obs=expand(f"{RESULTS}/{{point}}/observables.json", point=POINTS),
        plots=expand(f"{RESULTS}/{{point}}/plots", point=POINTS),
        loss=expand(f"{RESULTS}/{{point}}/model/loss.png", point=POINTS),
    output:
        md=f"{RESULTS}/report.md",
        html=f"{RESULTS}/report.html",
    params:
        qcdhpc=QCDHPC,
        points=[f"{RESULTS}/{p}" for p in POINTS],
    log:
        f"{RESULTS}/logs/report.log",
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    conda:
        "../envs/qcdhpc.yaml"
    shell:
        "{params.qcdhpc} report {params.points} --out {output.md} > {log} 2>&1"
