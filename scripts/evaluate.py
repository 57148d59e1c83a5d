from detbench.steps import evaluate

i = snakemake.input
evaluate(i.result, i.detections, i.dataset, snakemake.params.metric, snakemake.output.map_json,
         snakemake.log[0])  # fmt: skip
