# Model weights with a JSON sidecar (source, sha256, size) beside each .params file.


rule fetch_weights:
    output:
        params="weights/{source}/{model}.params",
        sidecar="weights/{source}/{model}.json",
    log:
        "logs/weights/{source}/{model}.log",
    wildcard_constraints:
        source="gluoncv|untrained|file",
    conda:
        ENV
    params:
        weights=lambda wildcards: plan.weights_settings(config, wildcards.model),
        python=config["runner"]["python"],
    message:
        "Getting {wildcards.source} weights of {wildcards.model}"
    script:
        "../scripts/fetch_weights.py"


rule fetch_darknet:
    output:
        params="weights/darknet/{model}.params",
        cfg="weights/darknet/{model}.cfg",
        sidecar="weights/darknet/{model}.json",
    log:
        "logs/weights/darknet/{model}.log",
    conda:
        ENV
    params:
        weights=lambda wildcards: plan.weights_settings(config, wildcards.model),
    message:
        "Getting the darknet .cfg and .weights of {wildcards.model} (sha256-checked)"
    script:
        "../scripts/fetch_darknet.py"


# The FP32 weights (a darknet base: its .weights and .cfg under weights/darknet/), quantized.
rule quantize_weights:
    input:
        unpack(lambda wildcards: plan.quantize_inputs(config, wildcards.model)),
        dataset=rules.check_voc.output.dataset,
        images=rules.sample_speed_images.output.images,
    output:
        params="weights/quantized/{model}.params",
        sidecar="weights/quantized/{model}.json",
        symbol="weights/quantized/{model}-symbol.json",
    log:
        "logs/weights/quantized/{model}.log",
    conda:
        ENV
    params:
        quantize=plan.quantize_settings(config),
        size=lambda wildcards: plan.settings(config, wildcards.model, "speed")["size"],
        python=config["runner"]["python"],
    message:
        "INT8-quantizing {wildcards.model} (MXNet quantize_net, calibrated on the speed sample)"
    script:
        "../scripts/quantize_weights.py"


# MXNet 1.9's exporter (mx.onnx) with onnx 1.17 (it needs onnx.mapping): so the export runs in
# the orchestrator's environment whatever runner.python is (the seed stack's MXNet 1.6 has none).
rule export_onnx:
    input:
        unpack(weights_of),
    output:
        onnx="weights/onnx/{source}/{model}.onnx",
        record="weights/onnx/{source}/{model}.json",
    log:
        "logs/weights/onnx/{source}/{model}.log",
    wildcard_constraints:
        source="gluoncv|untrained|file|darknet|quantized",
    conda:
        ENV
    message:
        "Exporting the {wildcards.source} weights of {wildcards.model} to ONNX (opset 13)"
    script:
        "../scripts/export_onnx.py"
