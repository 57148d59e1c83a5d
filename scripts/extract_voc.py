from detbench.steps import extract_voc

extract_voc(
    snakemake.input.archive, snakemake.output.devkit, snakemake.params.md5, snakemake.log[0]
)
