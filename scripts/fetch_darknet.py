from detbench.steps import fetch_darknet

fetch_darknet(
    snakemake.wildcards.model,
    snakemake.params.weights,
    snakemake.output.params,
    snakemake.output.cfg,
    snakemake.output.sidecar,
    snakemake.log[0],
)
