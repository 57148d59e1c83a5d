from detbench.steps import fetch_voc

fetch_voc(snakemake.params.urls, snakemake.params.md5, snakemake.output.archive, snakemake.log[0])
