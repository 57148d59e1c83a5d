# Config -> paths and target lists; the logic lives in detbench.plan.
NAME = config["name"]
RESULTS = plan.results_dir(config)
DATA = f"data/{NAME}"
LOGS = f"logs/{NAME}"
REPORTS = f"reports/{NAME}"
DEVKIT = plan.devkit(config)
ENV = "../envs/detbench.yaml"


wildcard_constraints:
    model=r"[A-Za-z0-9_.]+",
    device=r"cpu|gpu\d+",
    mode=r"imperative|hybrid",


def weights_of(wildcards):
    return plan.weights_files(config, wildcards.model)


def all_targets():
    return [
        *(f"{run}/mlflow.json" for run in plan.run_dirs(config)),
        f"{REPORTS}/summary.csv",
        *figure_files(),
        *plan.picture_files(config),
    ]


def pictures_of(wildcards):
    """The detection picture a voc run's MLflow record carries (the picture device's runs)."""
    if wildcards.device != plan.picture_device(config):
        return {}
    return {"picture": f"{REPORTS}/detections/{wildcards.model}.png"}


def figure_files():
    from detbench.report.captions import FIGURES

    return [f"{REPORTS}/figures/{key}.png" for key in sorted(FIGURES)]
