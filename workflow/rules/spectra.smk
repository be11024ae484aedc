# Spectra of the synthetic models (FFD Step I) and the spectral effects of each option (Appendix A).


rule synthetic_spectra:
    input:
        manifests=PLAN.zoo_manifests(ZOO),
        denoiser=DENOISER,
        pools=[pool_dir(p) for p in SYN["pools"]],
    output:
        SYNTHETIC_SPECTRA,
    log:
        "results/logs/spectra/synthetic.log",
    benchmark:
        "results/benchmarks/spectra/synthetic.tsv"
    params:
        args=spectra_args,
        checkpoints=PLAN.checkpoints(ZOO),
    conda:
        "../../envs/modelfp.yaml"
    threads: 2
    resources:
        gpu=1,
    shell:
        "python -m modelfp.steps synthetic-spectra --pool {input.pools} --denoiser {input.denoiser} "
        "--out {output} {params.args} --threads {threads} {params.checkpoints} --manifest {input.manifests} "
        "> {log} 2>&1"


rule spectral_effects:
    input:
        SYNTHETIC_SPECTRA,
    output:
        fig_11=report(figure_file("fig_11"), caption="../report/fig_11.rst", category="Spectral effects"),
        fig_13=report(figure_file("fig_13"), caption="../report/fig_13.rst", category="Spectral effects"),
        fig_14=report(figure_file("fig_14"), caption="../report/fig_14.rst", category="Spectral effects"),
        # in the order of fig_11, fig_13, fig_14 (the verb's --out-pdf)
        pdfs=[figure_file(fig, "pdf") for fig in ("fig_11", "fig_13", "fig_14")],
        claims=report(table_file("spectral_effects"), caption="../report/spectral_effects.rst", category="Tables"),
    log:
        "results/logs/spectra/spectral_effects.log",
    benchmark:
        "results/benchmarks/spectra/spectral_effects.tsv"
    conda:
        "../../envs/modelfp.yaml"
    threads: 1
    shell:
        "python -m modelfp.steps spectral-effects --spectra {input} "
        "--out-png {output.fig_11} {output.fig_13} {output.fig_14} --out-pdf {output.pdfs} "
        "--out-csv {output.claims} > {log} 2>&1"
