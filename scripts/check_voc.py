from detbench.steps import check_voc

devkit = snakemake.input.get("devkit", snakemake.params.root)
p = snakemake.params
check_voc(devkit, p.split, p.synthetic, snakemake.output.dataset, snakemake.log[0])
