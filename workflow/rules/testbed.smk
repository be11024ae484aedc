# The test bed (Table III): folders of the user's images, or generators the workflow trains itself.
# The same two rules make the validation set (issue 11), apart from it: {bed} is testbed or
# validation, and every helper looks the model up in that bed's entries (common.smk).


rule train_test_model:
    input:
        pools=lambda w: [pool_dir(p) for p in test_model_pools(w.model, w.bed)],
        base=lambda w: test_model_train_inputs(w.model, w.bed),
    output:
        "results/{bed}/{model}/generator.pt",
    log:
        "results/logs/{bed}/{model}.train.log",
    benchmark:
        "results/benchmarks/{bed}/{model}.train.tsv"
    params:
        args=lambda w, input: test_model_train_args(w.model, w.bed, input),
        device=config["device"],
    conda:
        "../../envs/modelfp.yaml"
    threads: 1
    resources:
        gpu=1,
    shell:
        "python -m modelfp testbed-train --name {wildcards.model} --pool {input.pools} "
        "{params.args} --out {output} --device {params.device} --threads {threads} > {log} 2>&1"


rule sample_test_model:
    input:
        lambda w: test_model_generator(w.model, w.bed),
    output:
        images=directory("results/{bed}/{model}/images"),
        meta="results/{bed}/{model}/meta.json",
        sheet=report(
            "results/{bed}/contact_sheets/{model}.png",
            caption="../report/contact_sheet.rst",
            category="Test bed",
            subcategory="{bed}",
        ),
    log:
        "results/logs/{bed}/{model}.sample.log",
    benchmark:
        "results/benchmarks/{bed}/{model}.sample.tsv"
    params:
        n=lambda w: test_model_n_images(w.model, w.bed),
        seed=lambda w: test_model_seed(w.model, w.bed),
        sampling=lambda w: test_model_sample_args(w.model, w.bed),
        device=config["device"],
    conda:
        "../../envs/modelfp.yaml"
    threads: 1
    resources:
        gpu=1,
    shell:
        "python -m modelfp testbed-sample --name {wildcards.model} --generator {input} "
        "--n {params.n} --seed {params.seed} --out-dir {output.images} --meta {output.meta} "
        "--sheet {output.sheet} {params.sampling} --device {params.device} --threads {threads} > {log} 2>&1"
