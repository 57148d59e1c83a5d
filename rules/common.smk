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
    device=plan.device_pattern(config),
    mode=r"imperative|hybrid|native",
    backend=plan.BACKEND_PATTERN,


# One job at a time per device over SSH, and a local run alone (plan.global_resources).
for _name, _limit in plan.global_resources(config).items():
    if _name not in workflow.global_resources:
        workflow.global_resources[_name] = _limit


def run_threads(wildcards):
    return plan.run_threads(config, wildcards.device, workflow.cores)


def weights_of(wildcards):
    return plan.weights_files(config, wildcards.model)


def model_files_of(wildcards):
    """What a run of a backend reads: the MXNet weights, and the ONNX export where it runs one."""
    return plan.run_inputs(config, wildcards.model, wildcards.backend)


def all_targets():
    return [
        *(f"{run}/mlflow.json" for run in plan.run_dirs(config)),
        f"{REPORTS}/summary.csv",
        f"{REPORTS}/backends.csv",
        f"{REPORTS}/modes.csv",
        *figure_files(),
        *plan.picture_files(config),
    ]


def pictures_of(wildcards):
    """The detection picture a voc run's MLflow record carries (the picture device's runs)."""
    if (wildcards.device, wildcards.backend) != (
        plan.picture_device(config),
        plan.picture_backend(config, wildcards.model),
    ):
        return {}
    return {"picture": f"{REPORTS}/detections/{wildcards.model}.png"}


def pictured_run(wildcards):
    """The voc run a model's detection picture draws (its first backend, the picture device)."""
    run = plan.picture_run(config, wildcards.model)
    return {"result": f"{run}/result.json", "detections": f"{run}/detections.npz"}


def figure_files():
    from detbench.report.captions import FIGURES

    return [f"{REPORTS}/figures/{key}.png" for key in sorted(FIGURES)]
