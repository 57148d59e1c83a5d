from detbench.steps import sample_speed_images

p = snakemake.params
sample_speed_images(
    snakemake.input.dataset, p.images, p.seed, snakemake.output.images, snakemake.log[0]
)
