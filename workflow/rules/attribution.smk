# Zero-shot attribution (Sections IV-B to IV-D, Appendix B): embeddings of the test models per
# extractor variant and view (w<n>: n x n sliding windows; jpeg-<q>, crop-<s>: perturbed images),
# their evaluation, and the tables and figures made from the evaluations.


rule embed:
    input:
        unpack(embed_inputs),
    output:
        directory(embeddings_dir()),
    log:
        "results/logs/embeddings/{variant}_{view}.log",
    benchmark:
        "results/benchmarks/embeddings/{variant}_{view}.tsv"
    params:
        models=embed_args,
        window=view_window,
        device=config["device"],
    conda:
        "../../envs/modelfp.yaml"
    threads: 1
    resources:
        gpu=1,
    shell:
        "python -m modelfp.steps embed --extractor {input.extractor} {params.models} --window {params.window} "
        "--out-dir {output} --device {params.device} --threads {threads} > {log} 2>&1"


rule evaluate:
    input:
        unpack(evaluate_inputs),
    output:
        csv=evaluation_file(),
        queries=details_file(evaluation_file(), "queries"),
        pairs=details_file(evaluation_file(), "pairs"),
    log:
        "results/logs/evaluation/{variant}_{view}.log",
    benchmark:
        "results/benchmarks/evaluation/{variant}_{view}.tsv"
    params:
        args=evaluate_args,
        verifier=verifier_args,
        lists=lists_args,
    conda:
        "../../envs/modelfp.yaml"
    threads: 1
    shell:
        "python -m modelfp.steps evaluate --embeddings {input.embeddings} {params.args}{params.verifier}{params.lists} "
        "--out-csv {output.csv} --out-queries {output.queries} --out-pairs {output.pairs} > {log} 2>&1"


rule tsne:
    input:
        embeddings_dir(view=DEFAULT_VIEW),
    output:
        classical=report(tsne_file("tsne_classical.png"), caption="../report/tsne.rst",
                         category="Figures"),
        emerging=report(tsne_file("tsne_emerging.png"), caption="../report/tsne.rst",
                        category="Figures"),
        metrics=tsne_file("metrics.csv"),
    log:
        "results/logs/figures/tsne_{variant}.log",
    benchmark:
        "results/benchmarks/figures/tsne_{variant}.tsv"
    params:
        args=tsne_args,
    conda:
        "../../envs/modelfp.yaml"
    threads: 1
    shell:
        "python -m modelfp.steps evaluate --embeddings {input} {params.args} "
        "--out-png {output.classical} {output.emerging} --title 'extractor {wildcards.variant}' "
        "--out-csv {output.metrics} > {log} 2>&1"


rule attribution_table:
    input:
        unpack(table_inputs),
    output:
        csv=report(table_file(), caption="../report/attribution_table.rst", category="Tables"),
        md=table_file(ext="md"),
    log:
        "results/logs/tables/{table}.log",
    benchmark:
        "results/benchmarks/tables/{table}.tsv"
    wildcard_constraints:
        table="|".join(ATTRIBUTION_TABLES),
    params:
        rows=table_args,
    conda:
        "../../envs/modelfp.yaml"
    threads: 1
    shell:
        "python -m modelfp.steps attribution-table --table {wildcards.table} {params.rows} "
        "--out-csv {output.csv} --out-md {output.md} > {log} 2>&1"


rule ceiling:
    """Table VIII's diagnostic row (issue 22), never a method: a linear classifier fitted on the
    reference inputs of the test models' training side, scored on identification's queries."""
    input:
        unpack(ceiling_inputs),
    output:
        csv=PLAN.ceiling_csv(),
        queries=details_file(PLAN.ceiling_csv(), "queries"),
    log:
        "results/logs/tables/ceiling.log",
    benchmark:
        "results/benchmarks/tables/ceiling.tsv"
    params:
        args=ceiling_args,
        device=config["device"],
    conda:
        "../../envs/modelfp.yaml"
    threads: 1
    resources:
        gpu=1,
    shell:
        "python -m modelfp.steps ceiling --extractor {input.extractor} --embeddings {input.embeddings} {params.args} "
        "--device {params.device} --threads {threads} --out-csv {output.csv} --out-queries {output.queries} "
        "> {log} 2>&1"


rule paired_tests:
    """Tables VIII and IX, paired (issue 22): every row against Only-Syn on the same queries
    (McNemar's exact test) and the same pairs (bootstrap of the AUC difference), per group."""
    input:
        unpack(paired_inputs),
    output:
        identification=report(table_file("table_viii_paired"), caption="../report/paired_tests.rst",
                              category="Tables"),
        verification=report(table_file("table_ix_paired"), caption="../report/paired_tests.rst",
                             category="Tables"),
    log:
        "results/logs/tables/paired_tests.log",
    benchmark:
        "results/benchmarks/tables/paired_tests.tsv"
    params:
        args=paired_args,
        seed=EVAL["seed"],
    conda:
        "../../envs/modelfp.yaml"
    threads: 1
    shell:
        "python -m modelfp.steps paired-tests {params.args} --seed {params.seed} "
        "--out-identification {output.identification} --out-verification {output.verification} > {log} 2>&1"


rule fig_8:
    """Figure 8: synthesis time and verification accuracy versus the maximum block count."""
    input:
        unpack(fig_8_inputs),
    output:
        png=report(figure_file("fig_8"), caption="../report/fig_8.rst", category="Figures"),
        pdf=figure_file("fig_8", "pdf"),
        csv=figure_file("fig_8", "csv"),
    log:
        "results/logs/figures/fig_8.log",
    benchmark:
        "results/benchmarks/figures/fig_8.tsv"
    params:
        evaluations=fig_8_args,
    conda:
        "../../envs/modelfp.yaml"
    threads: 1
    shell:
        "python -m modelfp.steps fig-8 --zoo-summary {input.zoo} {params.evaluations} "
        "--out-png {output.png} --out-pdf {output.pdf} --out-csv {output.csv} > {log} 2>&1"


rule fig_16:
    """Figure 16: identification under JPEG and crop-resize, plain and immunized extractors."""
    input:
        unpack(fig_16_inputs),
    output:
        png=report(figure_file("fig_16"), caption="../report/fig_16.rst", category="Figures"),
        pdf=figure_file("fig_16", "pdf"),
        csv=figure_file("fig_16", "csv"),
    log:
        "results/logs/figures/fig_16.log",
    benchmark:
        "results/benchmarks/figures/fig_16.tsv"
    params:
        points=fig_16_args,
    conda:
        "../../envs/modelfp.yaml"
    threads: 1
    shell:
        "python -m modelfp.steps fig-16 {params.points} --out-png {output.png} --out-pdf {output.pdf} "
        "--out-csv {output.csv} > {log} 2>&1"


rule fig_9:
    """Figure 9: LoRA variants of base generators beside their bases (lineage)."""
    input:
        embeddings_dir("all", DEFAULT_VIEW),
    output:
        png=report(figure_file("fig_9"), caption="../report/fig_9.rst", category="Figures"),
        csv=figure_file("fig_9", "csv"),
    log:
        "results/logs/figures/fig_9.log",
    benchmark:
        "results/benchmarks/figures/fig_9.tsv"
    params:
        args=lineage_args,
        seed=EVAL["seed"],
    conda:
        "../../envs/modelfp.yaml"
    threads: 1
    shell:
        "python -m modelfp.steps trace --embeddings {input} {params.args} --seed {params.seed} --derived-label 'LoRA variant' "
        "--title 'Figure 9: base models and their LoRA variants' --out-csv {output.csv} --out-png {output.png} "
        "> {log} 2>&1"


rule fig_15:
    """Figure 15: fingerprints of fixed and varied generation configurations."""
    input:
        embeddings_dir("all", DEFAULT_VIEW),
    output:
        png=report(figure_file("fig_15"), caption="../report/fig_15.rst", category="Figures"),
        csv=figure_file("fig_15", "csv"),
    log:
        "results/logs/figures/fig_15.log",
    benchmark:
        "results/benchmarks/figures/fig_15.tsv"
    params:
        args=configurations_args,
        seed=EVAL["seed"],
    conda:
        "../../envs/modelfp.yaml"
    threads: 1
    shell:
        "python -m modelfp.steps trace --embeddings {input} {params.args} --seed {params.seed} --derived-label 'varied configuration' "
        "--title 'Figure 15: fixed and varied generation configurations' --out-csv {output.csv} "
        "--out-png {output.png} > {log} 2>&1"
