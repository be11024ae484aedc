# Perturbed copies of the test models' images (Appendix B, Figure 16): one folder per level,
# holding one folder per test model.


rule perturb_test_models:
    input:
        unpack(lambda w: model_inputs(TB["models"])),
    output:
        directory("results/perturbed/{kind}/{level}"),
    log:
        "results/logs/perturb/{kind}_{level}.log",
    benchmark:
        "results/benchmarks/perturb/{kind}_{level}.tsv"
    wildcard_constraints:
        kind="jpeg|crop",
        level=r"[0-9.]+",
    params:
        models=lambda w, input: model_args(input),
        seed=config["seed"],
    conda:
        "../../envs/modelfp.yaml"
    threads: 1
    shell:
        "python -m modelfp perturb {params.models} --out-dir {output} --kind {wildcards.kind} "
        "--level {wildcards.level} --seed {params.seed} > {log} 2>&1"
