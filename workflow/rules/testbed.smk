# The test bed (Table III): folders of the user's images, or generators the workflow trains itself.


rule train_test_model:
    input:
        pools=[pool_manifest(p) for p in TB["pools"]],
        base=lambda w: test_model_train_inputs(w.model),
    output:
        "results/testbed/{model}/generator.pt",
    log:
        "results/logs/testbed/{model}.train.log",
    benchmark:
        "results/benchmarks/testbed/{model}.train.tsv"
    params:
        pools=lambda w, input: pool_dirs(input.pools),
        args=lambda w: test_model_train_args(w.model),
        device=config["device"],
    conda:
        "../../envs/modelfp.yaml"
    threads: 1
    resources:
        gpu=1,
    shell:
        "python -m modelfp testbed-train --name {wildcards.model} --pool {params.pools} "
        "{params.args} --out {output} --device {params.device} --threads {threads} > {log} 2>&1"


rule sample_test_model:
    input:
        lambda w: test_model_generator(w.model),
    output:
        images=directory("results/testbed/{model}/images"),
        meta="results/testbed/{model}/meta.json",
        sheet=report(
            "results/testbed/contact_sheets/{model}.png",
            caption="../report/contact_sheet.rst",
            category="Test bed",
        ),
    log:
        "results/logs/testbed/{model}.sample.log",
    benchmark:
        "results/benchmarks/testbed/{model}.sample.tsv"
    params:
        n=TB["n_images"],
        seed=lambda w: test_model_sample_seed(w.model),
        sampling=lambda w: test_model_sample_args(w.model),
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
