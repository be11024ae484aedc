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


# The deployed extractor with its specialist networks (extractor.specialists; issue 25): a JPEG or
# grayscale image and the gallery's copies of its re-save are embedded by the specialist of its kind.
rule attach_specialists:
    input:
        unpack(specialist_inputs),
    output:
        with_specialists_file(),
    log:
        "results/logs/extractors/{variant}.specialists.log",
    benchmark:
        "results/benchmarks/extractors/{variant}.specialists.tsv"
    params:
        specialists=specialist_args,
    conda:
        "../../envs/modelfp.yaml"
    shell:
        "python -m modelfp.steps attach-specialists --extractor {input.extractor} --specialist {params.specialists} "
        "--out {output} > {log} 2>&1"


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
        args=calibration_args,
    conda:
        "../../envs/modelfp.yaml"
    threads: 1
    shell:
        "python -m modelfp.steps calibrate --extractor {input.extractor} --evaluation {input.evaluation} "
        "--embeddings {input.embeddings} {params.args} --out {output} > {log} 2>&1"


# The validation images re-saved as people re-save them (modelfp.perturb.MATCHED), embedded by the
# tool's own code: calibrate fits each re-save's thresholds on them (modelfp.resaved; issue 25).
rule resaved_gallery:
    input:
        unpack(resaved_inputs),
    output:
        resaved_gallery_file(),
    log:
        "results/logs/extractors/{variant}.resaved.log",
    benchmark:
        "results/benchmarks/extractors/{variant}.resaved.tsv"
    params:
        args=resaved_args,
        state=resaved_state,
        device=config["device"],
        # the re-saves the tool keeps copies of (modelfp.perturb.MATCHED): recorded, so a release
        # that keeps another one (lossy WebP, session 18) reruns this rule and calibrate
        copies=" ".join(MATCHED),
        # which network embeds each re-save (modelfp.variants.SPECIALISTS): recorded for the same reason
        specialists=lambda w: "; ".join(f"{k}: {' '.join(v)}" for k, v in SPECIALISTS.items())
        if PLAN.specialists(w.variant) else "",
    conda:
        "../../envs/modelfp.yaml"
    threads: 1
    resources:
        gpu=1,
    shell:
        "python -m modelfp.steps resaved-gallery --extractor {input.extractor} {params.args} --out {output} "
        "--state {params.state} --device {params.device} --threads {threads} > {log} 2>&1"
