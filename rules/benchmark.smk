# Timed runs through the device runner. A spec rule writes each run's spec.json from its declared
# inputs and config slice; the run rule hands it to the runner. A local run takes every core, so
# it is alone on the machine whatever --cores says (DESIGN §5); a run over SSH takes none here and
# one unit of its device's resource, so devices run in parallel, one job each (DESIGN §9), and of
# benchmark_slots, all of which a local run takes, so a local run never has an SSH job beside it.


rule speed_spec:
    input:
        unpack(model_files_of),
        dataset=rules.check_voc.output.dataset,
        images=rules.sample_speed_images.output.images,
    output:
        spec=f"{RESULTS}/speed/{{model}}/{{backend}}/{{device}}-{{mode}}/spec.json",
    log:
        f"{LOGS}/spec/speed/{{model}}/{{backend}}/{{device}}-{{mode}}.log",
    conda:
        ENV
    params:
        settings=lambda wildcards: plan.run_settings(
            config, wildcards.model, "speed", wildcards.backend
        ),
        config_name=NAME,
        interval_s=config["telemetry"]["interval_s"],
        threads=config["runner"]["threads"],
        progress=plan.progress_settings(config),
    script:
        "../scripts/speed_spec.py"


rule voc_spec:
    input:
        unpack(model_files_of),
        dataset=rules.check_voc.output.dataset,
    output:
        spec=f"{RESULTS}/voc/{{model}}/{{backend}}/{{device}}/spec.json",
    log:
        f"{LOGS}/spec/voc/{{model}}/{{backend}}/{{device}}.log",
    conda:
        ENV
    params:
        settings=lambda wildcards: plan.run_settings(
            config, wildcards.model, "voc_run", wildcards.backend
        ),
        config_name=NAME,
        interval_s=config["telemetry"]["interval_s"],
        threads=config["runner"]["threads"],
        progress=plan.progress_settings(config),
    script:
        "../scripts/voc_spec.py"


rule speed:
    input:
        unpack(model_files_of),
        spec=rules.speed_spec.output.spec,
        dataset=rules.check_voc.output.dataset,
    output:
        result=f"{RESULTS}/speed/{{model}}/{{backend}}/{{device}}-{{mode}}/result.json",
        telemetry=f"{RESULTS}/speed/{{model}}/{{backend}}/{{device}}-{{mode}}/telemetry.csv",
    log:
        f"{LOGS}/speed/{{model}}/{{backend}}/{{device}}-{{mode}}.log",
    conda:
        ENV
    threads: run_threads
    resources:
        **plan.device_resources(config),
    params:
        python=config["runner"]["python"],
        device=lambda wildcards: plan.device_entry(config, wildcards.device),
    message:
        "Speed run: {wildcards.model} ({wildcards.backend}) on {wildcards.device}, {wildcards.mode}"
    script:
        "../scripts/speed.py"


rule voc:
    input:
        unpack(model_files_of),
        spec=rules.voc_spec.output.spec,
        dataset=rules.check_voc.output.dataset,
    output:
        result=f"{RESULTS}/voc/{{model}}/{{backend}}/{{device}}/result.json",
        telemetry=f"{RESULTS}/voc/{{model}}/{{backend}}/{{device}}/telemetry.csv",
        detections=f"{RESULTS}/voc/{{model}}/{{backend}}/{{device}}/detections.npz",
    log:
        f"{LOGS}/voc/{{model}}/{{backend}}/{{device}}.log",
    conda:
        ENV
    threads: run_threads
    resources:
        **plan.device_resources(config),
    params:
        python=config["runner"]["python"],
        device=lambda wildcards: plan.device_entry(config, wildcards.device),
    message:
        "VOC test-set run: {wildcards.model} ({wildcards.backend}) on {wildcards.device}"
    script:
        "../scripts/voc.py"
