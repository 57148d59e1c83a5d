# Aggregation into summary.csv, then the comparison figures.


rule aggregate:
    input:
        tracked=[f"{run}/mlflow.json" for run in plan.run_dirs(config)],
    output:
        summary=f"{REPORTS}/summary.csv",
    log:
        f"{LOGS}/aggregate.log",
    conda:
        ENV
    script:
        "../scripts/aggregate.py"


rule plots:
    input:
        summary=rules.aggregate.output.summary,
    output:
        figures=report(
            figure_files(),
            caption="../report/figures.rst",
            category="Figures",
        ),
    log:
        f"{LOGS}/plots.log",
    conda:
        ENV
    message:
        "Drawing the comparison figures"
    script:
        "../scripts/plots.py"
