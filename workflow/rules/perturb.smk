# Perturbed copies of the test models' images (Appendix B, Figure 16): one folder per level.


rule perturb_test_model:
    input:
        lambda w: test_model_images(w.model),
    output:
        directory("results/perturbed/{kind}/{level}/{model}"),
    log:
        "results/logs/perturb/{kind}_{level}_{model}.log",
    benchmark:
        "results/benchmarks/perturb/{kind}_{level}_{model}.tsv"
    wildcard_constraints:
        kind="jpeg|crop",
        level=r"[0-9.]+",
    params:
        seed=config["seed"],
    conda:
        "../../envs/modelfp.yaml"
    threads: 1
    shell:
        "python -m modelfp perturb --images {input} --out-dir {output} --kind {wildcards.kind} "
        "--level {wildcards.level} --seed {params.seed} > {log} 2>&1"
