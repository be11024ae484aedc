# Image pools: each configured folder (or embedded photo set) stored once as uint8 shards. The
# folder is the output (manifest.json and as many shards as the images fill); rules read it whole.


rule pool:
    output:
        directory(pool_dir()),
    log:
        "results/logs/pool/{pool}.log",
    benchmark:
        "results/benchmarks/pool/{pool}.tsv"
    params:
        args=pool_args,
    conda:
        "../../envs/modelfp.yaml"
    threads: 1
    shell:
        "python -m modelfp.steps pool --name {wildcards.pool} {params.args} --out-dir {output} > {log} 2>&1"
