from detbench.steps import make_photo_voc

make_photo_voc(snakemake.output.devkit, snakemake.params.split, snakemake.log[0])
