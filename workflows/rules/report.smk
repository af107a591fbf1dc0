# The comparison report over all physics points and CL directories (markdown + HTML, figures linked):
# one section per directory, chosen by the theory its observables say (qcdhpc/report/).


rule report:
    input:
        obs=expand(f"{RESULTS}/{{point}}/observables.json", point=POINTS),
        plots=expand(f"{RESULTS}/{{point}}/plots", point=POINTS),
        loss=expand(f"{RESULTS}/{{point}}/model/loss.png", point=POINTS),
        cl=cl_report_inputs(),
    output:
        md=f"{RESULTS}/report.md",
        html=f"{RESULTS}/report.html",
    params:
        qcdhpc=QCDHPC,
        points=[f"{RESULTS}/{p}" for p in POINTS] + cl_report_dirs(),
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
