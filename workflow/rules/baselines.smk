# The baselines of Tables VIII-X (Section IV-A, modelfp.baselines): each trains on the training side
# of the classical test models' images; its file then embeds like an extractor (rule embed, variant
# baseline_<method>), so its rows and Only-Syn's come from the same embed and evaluate code. It is
# early-stopped on a held-out part of that training side (baselines.holdout, the recipe's eval_every
# and patience); history.csv is its learning curve.


rule train_baseline:
    input:
        unpack(baseline_inputs),
    output:
        model=baseline_file(),
        history="results/baselines/{baseline}/history.csv",
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
        "python -m modelfp.steps train-baseline --name {wildcards.baseline} {params.args} --out {output.model} "
        "--history {output.history} --state {params.state} --device {params.device} --threads {threads} "
        "> {log} 2>&1"
