# Figures made from generators' weights rather than from fingerprints (issue 16): Figure 3 (Section
# III-A5, block swap) and Figure 12 (Appendix A2, kernel spectra). Their generators are entries of
# test_models (or validation.instances) trained by the test bed's rule train_test_model, listed in
# neither testbed.models nor validation.models, so no table evaluates them.


rule fig_3:
    """Figure 3: a 2-way classifier of two same-design generators, tested on their held-out images
    and on models composed by swapping their last 1 .. all generative blocks."""
    input:
        unpack(fig_3_inputs),
    output:
        png=report(figure_file("fig_3"), caption="../report/fig_3.rst", category="Figures"),
        pdf=figure_file("fig_3", "pdf"),
        csv=figure_file("fig_3", "csv"),
    log:
        "results/logs/figures/fig_3.log",
    benchmark:
        "results/benchmarks/figures/fig_3.tsv"
    params:
        args=fig_3_args,
        device=config["device"],
    conda:
        "../../envs/modelfp.yaml"
    threads: 1
    resources:
        gpu=1,
    shell:
        "python -m modelfp.steps fig-3 {params.args} --denoiser {input.denoiser} --out-png {output.png} "
        "--out-pdf {output.pdf} --out-csv {output.csv} --device {params.device} --threads {threads} > {log} 2>&1"


rule fig_12:
    """Figure 12: the summed kernel spectrum of one channel of the last convolution beside that
    channel's output spectrum, for two generators of one design trained on different data."""
    input:
        unpack(fig_12_inputs),
    output:
        png=report(figure_file("fig_12"), caption="../report/fig_12.rst", category="Figures"),
        pdf=figure_file("fig_12", "pdf"),
        csv=figure_file("fig_12", "csv"),
    log:
        "results/logs/figures/fig_12.log",
    benchmark:
        "results/benchmarks/figures/fig_12.tsv"
    params:
        args=fig_12_args,
        device=config["device"],
    conda:
        "../../envs/modelfp.yaml"
    threads: 1
    resources:
        gpu=1,
    shell:
        "python -m modelfp.steps fig-12 {params.args} --out-png {output.png} --out-pdf {output.pdf} "
        "--out-csv {output.csv} --device {params.device} --threads {threads} > {log} 2>&1"
