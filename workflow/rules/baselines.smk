# The baselines of Tables VIII-X (Section IV-A, modelfp.baselines): each trains on the training side
# of the classical test models' images; its file then embeds like an extractor (rule embed, variant
# baseline_<method>), so its rows and Only-Syn's come from the same embed and evaluate code.


rule train_baseline:
    input:
        unpack(baseline_inputs),
    output:
        "results/baselines/{baseline}/model.pt",
    log:
        "results/logs/baselines/{baseline}.log",
    benchmark:
        "results/benchmarks/baselines/{baseline}.tsv"
    params:
        args=baseline_args,
        state=baseline_state,
        device=config["device"],
    conda:
        "../../envs/modelfp.yaml"
    threads: 1
    resources:
        gpu=1,
    shell:
        "python -m modelfp train-baseline --name {wildcards.baseline} {params.args} --out {output} "
        "--state {params.state} --device {params.device} --threads {threads} > {log} 2>&1"
