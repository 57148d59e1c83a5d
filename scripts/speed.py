from detbench.steps import speed

w, p = snakemake.wildcards, snakemake.params
speed(
    model=w.model, device=w.device, mode=w.mode, settings=p.settings, config_name=p.config_name,
    dataset_json=snakemake.input.dataset, images_txt=snakemake.input.images,
    weights_params=snakemake.input.params, weights_sidecar=snakemake.input.sidecar,
    telemetry=p.telemetry, runner=p.runner, device_entry=p.device,
    result=snakemake.output.result, log=snakemake.log[0],
)  # fmt: skip
