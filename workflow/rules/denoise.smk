# The denoiser whose noise estimate is every image's residual (paper III-A, III-D; DnCNN).


rule train_denoiser:
    input:
        pools=[pool_dir(p) for p in DEN["pools"]],
    output:
        DENOISER,
    log:
        "results/logs/denoiser/dncnn.log",
    benchmark:
        "results/benchmarks/denoiser/dncnn.tsv"
    params:
        external=f"--external '{DEN['external']}'" if DEN["external"] else "",
        train=(
            f"--sigma {DEN['sigma']} --depth {DEN['depth']} --features {DEN['features']} "
            f"--patch {DEN['patch']} --batch-size {DEN['batch_size']} --steps {DEN['steps']} "
            f"--lr {DEN['lr']} --seed {config['seed']} --device {config['device']}"
        ),
    conda:
        "../../envs/modelfp.yaml"
    threads: 2
    resources:
        gpu=1,
    shell:
        "python -m modelfp.steps train-denoiser --pool {input.pools} --out {output} "
        "{params.external} {params.train} --threads {threads} > {log} 2>&1"
