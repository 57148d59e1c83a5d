from detbench.steps import run_spec

w, p, i = snakemake.wildcards, snakemake.params, snakemake.input
run_spec(
    kind="speed", model=w.model, device=w.device, mode=w.mode, settings=p.settings,
    config_name=p.config_name, dataset_json=i.dataset, images_txt=i.images,
    weights_params=i.params, weights_sidecar=i.sidecar, backend=w.backend,
    onnx=i.get("onnx"), onnx_record=i.get("record"), telemetry_interval_s=p.interval_s,
    threads=p.threads, progress=p.progress, out=snakemake.output.spec, log=snakemake.log[0],
)  # fmt: skip
