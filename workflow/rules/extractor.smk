# The fingerprint extractor (Section III-D): one trained file per variant of the ablations.


rule train_extractor:
    input:
        unpack(extractor_inputs),
    output:
        model=extractor_file(),
        history="results/extractors/{variant}/history.csv",
    log:
        "results/logs/extractors/{variant}.log",
    benchmark:
        "results/benchmarks/extractors/{variant}.tsv"
    params:
        args=extractor_args,
        state=extractor_state,
        device=config["device"],
    conda:
        "../../envs/modelfp.yaml"
    threads: 1
    resources:
        gpu=1,
    shell:
        "python -m modelfp.steps train-extractor --variant {wildcards.variant} {params.args} "
        "--out {output.model} --history {output.history} --state {params.state} "
        "--device {params.device} --threads {threads} > {log} 2>&1"


rule calibrate_extractor:
    input:
        unpack(calibration_inputs),
    output:
        calibrated_file(),
    log:
        "results/logs/extractors/{variant}.calibrate.log",
    benchmark:
        "results/benchmarks/extractors/{variant}.calibrate.tsv"
    params:
        gallery=EVAL["gallery"],
        seed=EVAL["seed"],
    conda:
        "../../envs/modelfp.yaml"
    threads: 1
    shell:
        "python -m modelfp.steps calibrate --extractor {input.extractor} --evaluation {input.evaluation} "
        "--embeddings {input.embeddings} --gallery {params.gallery} --seed {params.seed} "
        "--out {output} > {log} 2>&1"
