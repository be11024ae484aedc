# Fidelity of the synthetic models (paper III-C): spectra of the test models, FFD tables, Figure 10.


rule test_spectra:
    input:
        unpack(testbed_inputs),
        denoiser=DENOISER,
    output:
        TEST_SPECTRA,
    log:
        "results/logs/spectra/test_models.log",
    benchmark:
        "results/benchmarks/spectra/test_models.tsv"
    params:
        models=testbed_group_args,
        args=spectra_args,
    conda:
        "../../envs/modelfp.yaml"
    threads: 2
    resources:
        gpu=1,
    shell:
        "python -m modelfp.steps test-spectra {params.models} --denoiser {input.denoiser} --out {output} "
        "{params.args} --threads {threads} > {log} 2>&1"


rule ffd_tables:
    input:
        synthetic=SYNTHETIC_SPECTRA,
        real=TEST_SPECTRA,
    output:
        table_ii=report(table_file("table_ii"), caption="../report/table_ii.rst", category="Tables"),
        table_ii_md=table_file("table_ii", "md"),
        table_xi=report(table_file("table_xi"), caption="../report/table_xi.rst", category="Tables"),
        table_xi_md=table_file("table_xi", "md"),
    log:
        "results/logs/tables/ffd.log",
    benchmark:
        "results/benchmarks/tables/ffd.tsv"
    conda:
        "../../envs/modelfp.yaml"
    threads: 1
    shell:
        "python -m modelfp.steps ffd-tables --synthetic {input.synthetic} --real {input.real} "
        "--out-csv {output.table_ii} {output.table_xi} --out-md {output.table_ii_md} {output.table_xi_md} "
        "> {log} 2>&1"


rule fig_10:
    """Figure 10: test models' spectra beside their closest synthetic model."""
    input:
        synthetic=SYNTHETIC_SPECTRA,
        real=TEST_SPECTRA,
    output:
        png=report(figure_file("fig_10"), caption="../report/fig_10.rst", category="Figures"),
        pdf=figure_file("fig_10", "pdf"),
    log:
        "results/logs/figures/fig_10.log",
    benchmark:
        "results/benchmarks/figures/fig_10.tsv"
    conda:
        "../../envs/modelfp.yaml"
    threads: 1
    shell:
        "python -m modelfp.steps fig-10 --synthetic {input.synthetic} --real {input.real} "
        "--out-png {output.png} --out-pdf {output.pdf} > {log} 2>&1"
