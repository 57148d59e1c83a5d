from detbench.steps import plots

plots(snakemake.input.summary, list(snakemake.output.figures), snakemake.log[0])
