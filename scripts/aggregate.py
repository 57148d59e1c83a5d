from detbench.steps import aggregate

aggregate(list(snakemake.input.tracked), snakemake.output.summary, snakemake.log[0])
