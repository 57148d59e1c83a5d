# VOC07 mAP of each voc run's detections.


rule evaluate:
    input:
        result=rules.voc.output.result,
        detections=rules.voc.output.detections,
        dataset=rules.check_voc.output.dataset,
    output:
        map_json=f"{RESULTS}/voc/{{model}}/{{backend}}/{{device}}/map.json",
    log:
        f"{LOGS}/evaluate/{{model}}/{{backend}}/{{device}}.log",
    conda:
        ENV
    params:
        metric=config["voc_run"]["metric"],
    script:
        "../scripts/evaluate.py"
