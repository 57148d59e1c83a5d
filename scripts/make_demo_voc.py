from detbench.steps import make_demo_voc

make_demo_voc(
    snakemake.output.devkit,
    snakemake.params.synthetic,
    snakemake.params.split,
    snakemake.log[0],
)
