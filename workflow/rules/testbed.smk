# The test bed (Table III): folders of the user's images, or generators the workflow trains itself.
# The same two rules make the validation set (issue 11), apart from it: {bed} is testbed or
# validation, and the plan looks the model up in that bed's entries (modelfp.plan).


rule train_test_model:
    input:
        pools=train_pools,
        base=train_base,
    output:
        generator_file(),
    log:
        "results/logs/{bed}/{model}.train.log",
    benchmark:
        "results/benchmarks/{bed}/{model}.train.tsv"
    params:
        args=train_args,
        device=config["device"],
    conda:
        "../../envs/modelfp.yaml"
    threads: 1
    resources:
        gpu=1,
    shell:
        "python -m modelfp.steps testbed-train --name {wildcards.model} --pool {input.pools} "
        "{params.args} --out {output} --device {params.device} --threads {threads} > {log} 2>&1"


rule sample_test_model:
    input:
        sample_generator,
    output:
        images=directory(images_dir()),
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
        n=sample_n,
        seed=sample_seed,
        sampling=sample_args,
        device=config["device"],
    conda:
        "../../envs/modelfp.yaml"
    threads: 1
    resources:
        gpu=1,
    shell:
        "python -m modelfp.steps testbed-sample --name {wildcards.model} --generator {input} "
        "--n {params.n} --seed {params.seed} --out-dir {output.images} --meta {output.meta} "
        "--sheet {output.sheet} {params.sampling} --device {params.device} --threads {threads} > {log} 2>&1"
