from detbench.steps import aggregate

i = snakemake.input
aggregate(list(i.results), list(i.scores), snakemake.output.summary, snakemake.log[0])
