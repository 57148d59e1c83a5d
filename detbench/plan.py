"""Turn a validated config into paths, target lists and per-job settings.

Used by ``rules/common.smk``; every value here is deterministic (sorted, no timestamps or
absolute paths) so Snakemake's params trigger reruns only what a config change touched.
"""

from __future__ import annotations

import copy

from detbench import zoo


class ConfigError(ValueError):
    """A config value the schema cannot express is wrong; the message names the key."""


def check_config(config: dict) -> None:
    """Checks beyond config/schema.yaml: known model names and overrides of listed models."""
    unknown = [m for m in config["models"] if m not in zoo.MODELS]
    if unknown:
        raise ConfigError(
            f"models: unknown model(s) {', '.join(unknown)}; known GluonCV VOC detectors: "
            f"{', '.join(sorted(zoo.MODELS))}"
        )
    stray = sorted(set(config.get("overrides", {})) - set(config["models"]))
    if stray:
        raise ConfigError(f"overrides: {', '.join(stray)} not listed under models")


def results_dir(config: dict) -> str:
    return f"results/{config['name']}"


def devkit(config: dict) -> str:
    """The VOCdevkit the runs read: ``voc.root`` as given, else ``data/<name>/VOCdevkit``."""
    return config["voc"]["root"] or f"data/{config['name']}/VOCdevkit"


def data_source(config: dict) -> str:
    """Which of synthetic | root | archive | download provides the data (first set wins)."""
    voc = config["voc"]
    if voc.get("synthetic"):
        return "synthetic"
    if voc.get("root"):
        return "root"
    if voc.get("archive"):
        return "archive"
    return "download"


def settings(config: dict, model: str, section: str) -> dict:
    """``config[section]`` with the model's overrides applied (section: speed | voc_run)."""
    merged = copy.deepcopy(config[section])
    merged.update(config.get("overrides", {}).get(model, {}).get(section, {}))
    return dict(sorted(merged.items()))


def weights_source(config: dict) -> str:
    return config["weights"]["source"]


def weights_path(config: dict, model: str) -> str:
    return f"weights/{weights_source(config)}/{model}.params"


def speed_dirs(config: dict) -> list[str]:
    return sorted(
        f"{results_dir(config)}/speed/{model}/{device}-{mode}"
        for model in config["models"]
        for device in config["devices"]
        for mode in config["speed"]["modes"]
    )


def voc_dirs(config: dict) -> list[str]:
    return sorted(
        f"{results_dir(config)}/voc/{model}/{device}"
        for model in config["models"]
        for device in config["devices"]
    )


def run_dirs(config: dict) -> list[str]:
    return speed_dirs(config) + voc_dirs(config)
