from detbench.steps import track

track(snakemake.input.result, snakemake.input.experiment, snakemake.output.mlflow, snakemake.log[0])
