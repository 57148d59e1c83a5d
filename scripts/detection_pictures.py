from detbench.steps import detection_pictures

detection_pictures(
    snakemake.input.result,
    snakemake.input.detections,
    snakemake.input.dataset,
    snakemake.params.pictures,
    snakemake.output.picture,
    snakemake.log[0],
)
