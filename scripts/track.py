from detbench.steps import track

i = snakemake.input
roles = ("result", "spec", "telemetry", "map", "detections")
track(
    {role: i[role] for role in roles if role in i.keys()},
    i.experiment,
    snakemake.output.mlflow,
    snakemake.log[0],
    pictures=[i.picture] if "picture" in i.keys() else [],
)
