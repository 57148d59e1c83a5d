from detbench.steps import run

p = snakemake.params
run(snakemake.input.spec, p.python, snakemake.log[0], device_entry=p.device)
