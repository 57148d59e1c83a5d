from detbench.steps import run

run(snakemake.input.spec, snakemake.params.python, snakemake.log[0])
