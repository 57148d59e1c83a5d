from detbench.steps import fetch_weights

fetch_weights(
    snakemake.wildcards.model,
    snakemake.wildcards.source,
    snakemake.params.weights,
    snakemake.params.python,
    snakemake.output.params,
    snakemake.output.sidecar,
    snakemake.log[0],
)
