# The synthetic model zoo: one job per architecture trains all of its seeds together.


rule synthesize:
    input:
        pools=[pool_manifest(p) for p in SYN["pools"]],
    output:
        expand("results/synthetic/{{arch}}/seed{seed}.pt", seed=SEEDS),
    log:
        "results/logs/synthesize/{arch}.log",
    benchmark:
        "results/benchmarks/synthesize/{arch}.tsv"
    params:
        seeds=" ".join(map(str, SEEDS)),
        pools=lambda w, input: pool_dirs(input.pools),
        train=(
            f"--image-size {SYN['image_size']} --batch-size {SYN['batch_size']} "
            f"--max-steps {SYN['max_steps']} --lr {SYN['lr']} --eta {SYN['eta']} "
            f"--check-every {SYN['check_every']} --val-images {SYN['val_images']} "
            f"--width {SYN['width']} --path {SYN['path']} --device {config['device']}"
        ),
    conda:
        "../../envs/modelfp.yaml"
    threads: 1
    resources:
        gpu=1,
    shell:
        "python -m modelfp synthesize --arch {wildcards.arch} --seeds {params.seeds} "
        "--pool {params.pools} --out-dir results/synthetic/{wildcards.arch} {params.train} "
        "--threads {threads} > {log} 2>&1"


rule zoo_summary:
    input:
        lambda w: checkpoints(ZOO if w.zoo == "summary" else ZOO_K3),
    output:
        report("results/synthetic/{zoo}.csv", caption="../report/zoo_summary.rst", category="Synthetic zoo"),
    log:
        "results/logs/synthesize/{zoo}.log",
    benchmark:
        "results/benchmarks/synthesize/{zoo}.tsv"
    wildcard_constraints:
        zoo="summary|summary_k3",
    conda:
        "../../envs/modelfp.yaml"
    threads: 1
    shell:
        "python -m modelfp zoo-summary --out {output} {input} > {log} 2>&1"
