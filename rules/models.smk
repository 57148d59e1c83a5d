# Model weights with a JSON sidecar (source, sha256, size) beside each .params file.


rule fetch_weights:
    output:
        params="weights/{source}/{model}.params",
        sidecar="weights/{source}/{model}.json",
    log:
        "logs/weights/{source}/{model}.log",
    conda:
        ENV
    params:
        weights=config["weights"],
        python=config["runner"]["python"],
    message:
        "Getting {wildcards.source} weights of {wildcards.model}"
    script:
        "../scripts/fetch_weights.py"
