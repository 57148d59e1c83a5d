from detbench.steps import track

track(
    snakemake.input.result,
    snakemake.input.experiment,
    snakemake.output.mlflow,
    snakemake.log[0],
    pictures=[snakemake.input.picture] if "picture" in snakemake.input.keys() else [],
)
