from detbench.steps import aggregate

aggregate(list(snakemake.input.results), snakemake.output.summary, snakemake.log[0])
