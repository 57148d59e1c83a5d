from detbench.steps import mlflow_experiment

mlflow_experiment(snakemake.params.config_name, snakemake.output.experiment, snakemake.log[0])
