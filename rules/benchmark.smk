# Timed runs through the device runner. `threads: workflow.cores` keeps every benchmark job
# alone on the machine, whatever --cores says (DESIGN §5).


rule speed:
    input:
        unpack(weights_of),
        dataset=rules.check_voc.output.dataset,
        images=rules.sample_speed_images.output.images,
    output:
        result=f"{RESULTS}/speed/{{model}}/{{device}}-{{mode}}/result.json",
        telemetry=f"{RESULTS}/speed/{{model}}/{{device}}-{{mode}}/telemetry.csv",
    log:
        f"{LOGS}/speed/{{model}}/{{device}}-{{mode}}.log",
    conda:
        ENV
    threads: workflow.cores
    params:
        settings=lambda wildcards: plan.settings(config, wildcards.model, "speed"),
        config_name=NAME,
        telemetry=config["telemetry"],
        runner=config["runner"],
    message:
        "Speed run: {wildcards.model} on {wildcards.device}, {wildcards.mode}"
    script:
        "../scripts/speed.py"


rule voc:
    input:
        unpack(weights_of),
        dataset=rules.check_voc.output.dataset,
    output:
        result=f"{RESULTS}/voc/{{model}}/{{device}}/result.json",
        telemetry=f"{RESULTS}/voc/{{model}}/{{device}}/telemetry.csv",
        detections=f"{RESULTS}/voc/{{model}}/{{device}}/detections.npz",
    log:
        f"{LOGS}/voc/{{model}}/{{device}}.log",
    conda:
        ENV
    threads: workflow.cores
    params:
        settings=lambda wildcards: plan.settings(config, wildcards.model, "voc_run"),
        config_name=NAME,
        telemetry=config["telemetry"],
        runner=config["runner"],
    message:
        "VOC test-set run: {wildcards.model} on {wildcards.device}"
    script:
        "../scripts/voc.py"
