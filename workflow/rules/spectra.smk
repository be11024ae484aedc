# Spectra of the synthetic models (FFD Step I) and the spectral effects of each option (Appendix A).


rule synthetic_spectra:
    input:
        manifests=zoo_manifests(ZOO),
        denoiser="results/denoiser/dncnn.pt",
        pools=[pool_dir(p) for p in SYN["pools"]],
    output:
        "results/spectra/synthetic.npz",
    log:
        "results/logs/spectra/synthetic.log",
    benchmark:
        "results/benchmarks/spectra/synthetic.tsv"
    params:
        args=spectra_args,
        checkpoints=checkpoints(ZOO),
    conda:
        "../../envs/modelfp.yaml"
    threads: 2
    resources:
        gpu=1,
    shell:
        "python -m modelfp synthetic-spectra --pool {input.pools} --denoiser {input.denoiser} "
        "--out {output} {params.args} --threads {threads} {params.checkpoints} --manifest {input.manifests} "
        "> {log} 2>&1"


rule spectral_effects:
    input:
        "results/spectra/synthetic.npz",
    output:
        fig_11=report("results/figures/fig_11_upsampling.png", caption="../report/fig_11.rst", category="Spectral effects"),
        fig_13=report("results/figures/fig_13_activation.png", caption="../report/fig_13.rst", category="Spectral effects"),
        fig_14=report("results/figures/fig_14_normalization.png", caption="../report/fig_14.rst", category="Spectral effects"),
        # in the order of fig_11, fig_13, fig_14 (the verb's --out-pdf)
        pdfs=expand(
            "results/figures/{fig}.pdf",
            fig=["fig_11_upsampling", "fig_13_activation", "fig_14_normalization"],
        ),
        claims=report("results/tables/spectral_effects.csv", caption="../report/spectral_effects.rst", category="Tables"),
    log:
        "results/logs/spectra/spectral_effects.log",
    benchmark:
        "results/benchmarks/spectra/spectral_effects.tsv"
    conda:
        "../../envs/modelfp.yaml"
    threads: 1
    shell:
        "python -m modelfp spectral-effects --spectra {input} "
        "--out-png {output.fig_11} {output.fig_13} {output.fig_14} --out-pdf {output.pdfs} "
        "--out-csv {output.claims} > {log} 2>&1"
