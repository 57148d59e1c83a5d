# Aggregation into summary.csv, then one job per comparison figure. Every figure goes into the
# HTML report (snakemake --report) with its own caption, category and labels (detbench.report.html).
from detbench.report import html


report: "../report/workflow.rst"


rule aggregate:
    input:
        results=[f"{run}/result.json" for run in plan.run_dirs(config)],
        scores=[f"{run}/map.json" for run in plan.voc_dirs(config)],
    output:
        summary=report(
            f"{REPORTS}/summary.csv",
            caption="../report/summary.rst",
            category="Summary",
            labels={"table": "every run (summary.csv)"},
        ),
    log:
        f"{LOGS}/aggregate.log",
    conda:
        ENV
    script:
        "../scripts/aggregate.py"


rule plots:
    input:
        summary=rules.aggregate.output.summary,
        # read through summary.csv's run_dir column: per-batch latencies, telemetry traces
        results=[f"{run}/result.json" for run in plan.run_dirs(config)],
        telemetry=[f"{run}/telemetry.csv" for run in plan.run_dirs(config)],
    output:
        figures=report(
            [f"{REPORTS}/figures/{{figure}}.png"],
            caption="../report/figure.rst",
            category=html.category,
            labels=html.labels,
        ),
    log:
        f"{LOGS}/plots/{{figure}}.log",
    wildcard_constraints:
        figure=html.FIGURE_PATTERN,
    conda:
        ENV
    params:
        caption=html.caption,
        experiment=html.experiment,
    message:
        "Drawing figure {wildcards.figure}"
    script:
        "../scripts/plots.py"


rule backends_table:
    input:
        summary=rules.aggregate.output.summary,
        # read through summary.csv's run_dir column: each run's backend entry
        results=[f"{run}/result.json" for run in plan.run_dirs(config)],
        model_files=sorted(
            {
                f
                for files in plan.backend_model_files(config).values()
                for f in files.values()
            }
        ),
    output:
        table=report(
            f"{REPORTS}/backends.csv",
            caption="../report/backends.rst",
            category="Backends",
            labels={"table": "model x backend x device (backends.csv)"},
        ),
        figure=report(
            f"{REPORTS}/figures/backends.png",
            caption="../report/backends.rst",
            category="Backends",
            labels={"table": "throughput, latency, mAP per backend"},
        ),
    log:
        f"{LOGS}/backends_table.log",
    conda:
        ENV
    params:
        model_files=plan.backend_model_files(config),
    message:
        "Table of backends"
    script:
        "../scripts/backends_table.py"


rule modes_table:
    input:
        summary=rules.aggregate.output.summary,
    output:
        table=report(
            f"{REPORTS}/modes.csv",
            caption="../report/modes.rst",
            category="Speed",
            labels={
                "figure": "Imperative vs hybrid against the noise (modes.csv)",
                "runs": "speed",
            },
        ),
    log:
        f"{LOGS}/modes_table.log",
    conda:
        ENV
    message:
        "Table of imperative vs hybrid against the pass-to-pass noise"
    script:
        "../scripts/modes_table.py"


rule detection_pictures:
    input:
        unpack(pictured_run),
        dataset=rules.check_voc.output.dataset,
    output:
        picture=report(
            f"{REPORTS}/detections/{{model}}.png",
            caption="../report/detections.rst",
            category="Detections",
            labels=html.picture_labels,
        ),
    log:
        f"{LOGS}/detection_pictures/{{model}}.log",
    conda:
        ENV
    params:
        pictures=config["detection_pictures"],
    message:
        "Drawing {wildcards.model}'s detections on fixed photos"
    script:
        "../scripts/detection_pictures.py"
