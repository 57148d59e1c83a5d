from detbench.steps import export_onnx

export_onnx(
    snakemake.wildcards.model,
    snakemake.params.python,
    snakemake.input.params,
    snakemake.input.sidecar,
    snakemake.output.onnx,
    snakemake.output.record,
    snakemake.log[0],
)
