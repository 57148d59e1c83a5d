from detbench.steps import export_onnx

export_onnx(
    snakemake.wildcards.model,
    None,  # the orchestrator's Python: MXNet 1.9.1 + onnx 1.17 (rules/models.smk)
    snakemake.input.params,
    snakemake.input.sidecar,
    snakemake.output.onnx,
    snakemake.output.record,
    snakemake.log[0],
)
