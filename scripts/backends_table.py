from detbench.steps import backends_table

o = snakemake.output
backends_table(snakemake.input.summary, snakemake.params.model_files, o.table, o.figure,
               snakemake.log[0])  # fmt: skip
