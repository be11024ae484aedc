# The validation set (issue 11: never choose a setting on the test set). Its generators are made by
# the test bed's rules under results/validation/{model}/ (testbed.smk), embedded and evaluated by
# the attribution rules in the view val-w<n> (results/embeddings/{variant}/val-w<n>/,
# results/evaluation/{variant}/val-w<n>.csv); this rule gathers them into choices.csv, the table on
# which settings are chosen. No table of the paper reads any of it.


rule validation_table:
    input:
        unpack(validation_table_inputs),
    output:
        VALIDATION_CHOICES,
    log:
        "results/logs/validation/choices.log",
    benchmark:
        "results/benchmarks/validation/choices.tsv"
    params:
        args=validation_table_args,
    conda:
        "../../envs/modelfp.yaml"
    threads: 1
    shell:
        "python -m modelfp.steps validation-table {params.args} --out {output} > {log} 2>&1"
