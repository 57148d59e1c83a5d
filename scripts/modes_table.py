from detbench.steps import modes_table

modes_table(snakemake.input.summary, snakemake.output.table, snakemake.log[0])
