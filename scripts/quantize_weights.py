from detbench.steps import quantize_weights

quantize_weights(
    snakemake.wildcards.model,
    snakemake.params.quantize,
    snakemake.params.size,
    snakemake.params.python,
    snakemake.input.fp32_params,
    snakemake.input.fp32_sidecar,
    snakemake.input.dataset,
    snakemake.input.images,
    snakemake.output.params,
    snakemake.output.sidecar,
    snakemake.log[0],
    snakemake.input.get("fp32_cfg"),
)
