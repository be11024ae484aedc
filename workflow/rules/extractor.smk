# The fingerprint extractor (Section III-D): one trained file per variant of the ablations.


rule train_extractor:
    input:
        unpack(extractor_inputs),
    output:
        model="results/extractors/{variant}/trained.pt",
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
        "python -m modelfp train-extractor --variant {wildcards.variant} {params.args} "
        "--out {output.model} --history {output.history} --state {params.state} "
        "--device {params.device} --threads {threads} > {log} 2>&1"


rule calibrate_extractor:
    input:
        extractor="results/extractors/{variant}/trained.pt",
        evaluation=lambda w: calibration_csv(w.variant),
        embeddings=lambda w: calibration_embeddings(w.variant),
    output:
        "results/extractors/{variant}/model.pt",
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
        "python -m modelfp calibrate --extractor {input.extractor} --evaluation {input.evaluation} "
        "--embeddings {input.embeddings} --gallery {params.gallery} --seed {params.seed} "
        "--out {output} > {log} 2>&1"
