"""How each figure appears in the Snakemake HTML report (``snakemake --report``).

``rules/report.smk`` draws one figure per job (wildcard ``figure``, a key of ``FIGURES``) and
wraps it in ``report()`` with the functions below: ``category`` files it under a section of the
report, ``labels`` names it in the section's table, and ``caption`` hands the figure's own text
from ``FIGURES`` to ``report/figure.rst`` (through the rule's params), which adds the run's
measurement settings and an untrained-weights warning from the config.
"""

from __future__ import annotations

from detbench.report.captions import FIGURES

# key -> (report category, title in the category's table, experiment the figure is drawn from)
FIGURE_REPORT: dict[str, tuple[str, str, str]] = {
    "speed_modes_gpu": ("Speed", "Imperative vs hybrid, GPU", "speed"),
    "speed_modes_cpu": ("Speed", "Imperative vs hybrid, CPU", "speed"),
    "speed_cpu_vs_gpu": ("Speed", "CPU vs GPU", "speed"),
    "voc_total_time": ("Speed", "Test-set total time", "voc"),
    "voc_fps": ("Speed", "Test-set throughput (FPS)", "voc"),
    "latency_distribution": ("Latency", "Per-image latency distribution", "speed"),
    "voc_map": ("Accuracy", "mAP (VOC07)", "voc"),
    "ap_heatmap": ("Accuracy", "AP per class", "voc"),
    "pareto_map_fps": ("Accuracy", "mAP vs FPS Pareto front", "voc"),
    "voc_gpu_temp_delta": ("Device", "GPU temperature change", "voc"),
    "voc_swap_delta": ("Device", "Swap change", "voc"),
    "telemetry_traces": ("Device", "Telemetry over time", "voc"),
    "fps_by_device": ("Devices compared", "Throughput per model per device", "voc"),
    "pareto_by_device": ("Devices compared", "mAP vs FPS, fleet Pareto front", "voc"),
    "energy_by_device": ("Devices compared", "Energy per image per device", "voc"),
    "telemetry_by_device": ("Devices compared", "Telemetry, devices side by side", "voc"),
}

# The wildcard constraint of ``{figure}``: exactly the keys of FIGURES.
FIGURE_PATTERN = "|".join(sorted(FIGURES))


def _entry(wildcards) -> tuple[str, str, str]:
    key = wildcards.figure
    if key not in FIGURE_REPORT or key not in FIGURES:
        raise KeyError(f"expected a figure key in {sorted(FIGURES)}, got {key!r}")
    return FIGURE_REPORT[key]


def category(wildcards) -> str:
    """The report section of the figure ``wildcards.figure``."""
    return _entry(wildcards)[0]


def labels(wildcards) -> dict[str, str]:
    """The figure's row in its section's table: its title and the runs it is drawn from."""
    _, title, experiment = _entry(wildcards)
    return {"figure": title, "runs": experiment}


def caption(wildcards) -> str:
    """The figure's own caption (what it shows and how it was measured), from ``FIGURES``."""
    _entry(wildcards)
    return FIGURES[wildcards.figure]


def experiment(wildcards) -> str:
    """``speed`` or ``voc``: which runs' settings ``report/figure.rst`` lists."""
    return _entry(wildcards)[2]


def picture_labels(wildcards) -> dict[str, str]:
    """A detection picture's row in the Detections section."""
    return {"model": wildcards.model, "figure": "detections on fixed photos"}
