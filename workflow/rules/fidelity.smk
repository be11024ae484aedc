# Fidelity of the synthetic models (paper III-C): spectra of the test models, FFD tables, Figure 10.


rule test_spectra:
    input:
        unpack(lambda w: model_inputs(TB["models"])),
        denoiser="results/denoiser/dncnn.pt",
    output:
        "results/spectra/test_models.npz",
    log:
        "results/logs/spectra/test_models.log",
    benchmark:
        "results/benchmarks/spectra/test_models.tsv"
    params:
        models=lambda w, input: model_args(input, groups_of="testbed"),
        args=spectra_args,
    conda:
        "../../envs/modelfp.yaml"
    threads: 2
    resources:
        gpu=1,
    shell:
        "python -m modelfp test-spectra {params.models} --denoiser {input.denoiser} --out {output} "
        "{params.args} --threads {threads} > {log} 2>&1"


rule ffd_tables:
    input:
        synthetic="results/spectra/synthetic.npz",
        real="results/spectra/test_models.npz",
    output:
        table_ii=report("results/tables/table_ii.csv", caption="../report/table_ii.rst", category="Tables"),
        table_ii_md="results/tables/table_ii.md",
        table_xi=report("results/tables/table_xi.csv", caption="../report/table_xi.rst", category="Tables"),
        table_xi_md="results/tables/table_xi.md",
    log:
        "results/logs/tables/ffd.log",
    benchmark:
        "results/benchmarks/tables/ffd.tsv"
    conda:
        "../../envs/modelfp.yaml"
    threads: 1
    shell:
        "python -m modelfp ffd-tables --synthetic {input.synthetic} --real {input.real} "
        "--out-csv {output.table_ii} {output.table_xi} --out-md {output.table_ii_md} {output.table_xi_md} "
        "> {log} 2>&1"


rule fig_10:
    """Figure 10: test models' spectra beside their closest synthetic model."""
    input:
        synthetic="results/spectra/synthetic.npz",
        real="results/spectra/test_models.npz",
    output:
        png=report("results/figures/fig_10_closest_spectra.png", caption="../report/fig_10.rst", category="Figures"),
        pdf="results/figures/fig_10_closest_spectra.pdf",
    log:
        "results/logs/figures/fig_10.log",
    benchmark:
        "results/benchmarks/figures/fig_10.tsv"
    conda:
        "../../envs/modelfp.yaml"
    threads: 1
    shell:
        "python -m modelfp fig-10 --synthetic {input.synthetic} --real {input.real} "
        "--out-png {output.png} --out-pdf {output.pdf} > {log} 2>&1"
