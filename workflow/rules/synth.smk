# The synthetic model zoo: one job per slice of 12 architectures (shared K, L, S, U); each
# architecture trains all of its seeds together, one checkpoint file per model.


rule synthesize:
    input:
        pools=[pool_dir(p) for p in SYN["pools"]],
    output:
        SLICE_CHECKPOINTS,
    log:
        "results/logs/synthesize/{slice}.log",
    benchmark:
        "results/benchmarks/synthesize/{slice}.tsv"
    params:
        archs=slice_arch_ids,
        seeds=" ".join(map(str, SEEDS)),
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
        "python -m modelfp.steps synthesize --arch {params.archs} --seeds {params.seeds} "
        "--pool {input.pools} --out {output} {params.train} "
        "--threads {threads} > {log} 2>&1"


rule zoo_manifest:
    input:
        SLICE_CHECKPOINTS,
    output:
        slice_manifest(),
    log:
        "results/logs/zoo_manifest/{slice}.log",
    benchmark:
        "results/benchmarks/zoo_manifest/{slice}.tsv"
    conda:
        "../../envs/modelfp.yaml"
    threads: 1
    shell:
        "python -m modelfp.steps zoo-manifest --out {output} {input} > {log} 2>&1"


rule zoo_summary:
    input:
        zoo_summary_manifests,
    output:
        report(zoo_summary(), caption="../report/zoo_summary.rst", category="Synthetic zoo"),
    log:
        "results/logs/zoo_summary/{zoo}.log",
    benchmark:
        "results/benchmarks/zoo_summary/{zoo}.tsv"
    params:
        checkpoints=zoo_summary_checkpoints,
    wildcard_constraints:
        zoo="summary|summary_k3",
    conda:
        "../../envs/modelfp.yaml"
    threads: 1
    shell:
        "python -m modelfp.steps zoo-summary --out {output} {params.checkpoints} --manifest {input} > {log} 2>&1"
