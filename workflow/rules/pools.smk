# Image pools: each configured folder (or embedded photo set) stored once as uint8 shards.


rule pool:
    output:
        "results/pools/{pool}/manifest.json",
    log:
        "results/logs/pool/{pool}.log",
    benchmark:
        "results/benchmarks/pool/{pool}.tsv"
    params:
        args=lambda w: pool_args(w.pool),
    conda:
        "../../envs/modelfp.yaml"
    threads: 1
    shell:
        "python -m modelfp pool --name {wildcards.pool} {params.args} "
        "--out results/pools/{wildcards.pool} > {log} 2>&1"
