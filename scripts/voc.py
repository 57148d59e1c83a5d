from detbench.steps import voc

w, p = snakemake.wildcards, snakemake.params
voc(
    model=w.model, device=w.device, mode=p.settings["mode"], settings=p.settings,
    config_name=p.config_name, dataset_json=snakemake.input.dataset,
    weights_params=snakemake.input.params, weights_sidecar=snakemake.input.sidecar,
    telemetry=p.telemetry, runner=p.runner, device_entry=p.device,
    result=snakemake.output.result, log=snakemake.log[0],
)  # fmt: skip
