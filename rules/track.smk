# MLflow logging, one job per run directory, after the run (and evaluate, for voc runs), from the
# run's declared files only.


rule mlflow_experiment:
    output:
        experiment=f"{RESULTS}/mlflow_experiment.json",
    log:
        f"{LOGS}/mlflow_experiment.log",
    conda:
        ENV
    params:
        config_name=NAME,
    script:
        "../scripts/mlflow_experiment.py"


rule track_speed:
    input:
        result=rules.speed.output.result,
        spec=rules.speed_spec.output.spec,
        telemetry=rules.speed.output.telemetry,
        experiment=rules.mlflow_experiment.output.experiment,
    output:
        mlflow=f"{RESULTS}/speed/{{model}}/{{backend}}/{{device}}-{{mode}}/mlflow.json",
    log:
        f"{LOGS}/track/speed/{{model}}/{{backend}}/{{device}}-{{mode}}.log",
    conda:
        ENV
    script:
        "../scripts/track.py"


rule track_voc:
    input:
        unpack(pictures_of),
        result=rules.voc.output.result,
        spec=rules.voc_spec.output.spec,
        telemetry=rules.voc.output.telemetry,
        detections=rules.voc.output.detections,
        map=rules.evaluate.output.map_json,
        experiment=rules.mlflow_experiment.output.experiment,
    output:
        mlflow=f"{RESULTS}/voc/{{model}}/{{backend}}/{{device}}/mlflow.json",
    log:
        f"{LOGS}/track/voc/{{model}}/{{backend}}/{{device}}.log",
    conda:
        ENV
    script:
        "../scripts/track.py"
