# Perturbed copies of the test models' images (Appendix B, Figure 16): one folder per level,
# holding one folder per test model.


rule perturb_test_models:
    input:
        unpack(testbed_inputs),
    output:
        directory(perturbed_dir()),
    log:
        "results/logs/perturb/{kind}_{level}.log",
    benchmark:
        "results/benchmarks/perturb/{kind}_{level}.tsv"
    wildcard_constraints:
        kind="jpeg|crop",
        level=r"[0-9.]+",
    params:
        models=testbed_args,
        seed=config["seed"],
    conda:
        "../../envs/modelfp.yaml"
    threads: 1
    shell:
        "python -m modelfp.steps perturb {params.models} --out-dir {output} --kind {wildcards.kind} "
        "--level {wildcards.level} --seed {params.seed} > {log} 2>&1"
