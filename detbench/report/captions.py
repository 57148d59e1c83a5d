"""Figure keys (file stems) and captions; light to import (the Snakefile lists outputs from it)."""

from __future__ import annotations

_SYNC = "MXNet outputs synchronised before each clock read"
_SPEED = (
    "the batch-1 speed run: the post-warm-up loop over the sampled test images resized to "
    f"512x512, data loading plus model time, wall clock, {_SYNC}"
)
_VOC = "the voc run over the VOC2007 test set (batch 8, each model's own GluonCV eval transform)"
_FAILED = "Failed runs are hatched grey placeholders annotated with their error."
_WEIGHTS = "The title says when the weights were untrained (then mAP means nothing)."
FIGURES: dict[str, str] = {
    "speed_modes_gpu": f"Imperative vs hybridized (hybridize()) execution on GPU: total wall time "
    f"of {_SPEED}; one bar per model and mode, lower is better. {_FAILED} {_WEIGHTS}",
    "speed_modes_cpu": f"Imperative vs hybridized (hybridize()) execution on CPU: total wall time "
    f"of {_SPEED}; one bar per model and mode, lower is better. {_FAILED} {_WEIGHTS}",
    "speed_cpu_vs_gpu": f"CPU vs GPU: total wall time of {_SPEED}; one panel per execution mode, "
    f"lower is better. {_FAILED} {_WEIGHTS}",
    "voc_total_time": f"Total wall time of {_VOC}, after warm-up batches, data loading and "
    f"model time, {_SYNC}. {_FAILED} {_WEIGHTS}",
    "voc_fps": f"Throughput (images/s = measured images / total wall time) of {_VOC}, {_SYNC}; "
    f"higher is better. {_FAILED} {_WEIGHTS}",
    "voc_map": f"VOC07 mAP at IoU 0.5 of {_VOC}, scored by detbench evaluate on the saved "
    f"detections. {_FAILED} {_WEIGHTS}",
    "voc_gpu_temp_delta": f"GPU temperature change (end minus start, °C) during {_VOC}, from the "
    f"telemetry sampled in the background (jtop, NVML); 'no sensor' where the host has none. "
    f"{_FAILED} {_WEIGHTS}",
    "voc_swap_delta": f"Swap used change (end minus start, MB) during {_VOC}, from the background "
    f"telemetry; growth means the model did not fit in RAM. {_FAILED} {_WEIGHTS}",
    "pareto_map_fps": f"Accuracy vs speed: mAP (VOC07, IoU 0.5) against throughput (images/s) "
    f"of {_VOC}; the dashed line per device joins the runs no other run beats on both. Runs "
    f"without both numbers are listed under the plot with their reason. {_WEIGHTS}",
    "ap_heatmap": f"Average precision per VOC class (IoU 0.5) for each model and device of "
    f"{_VOC}; grey cells have no AP (class without non-difficult ground truth). Failed runs are "
    f"rows with their error. {_WEIGHTS}",
    "telemetry_traces": f"Device telemetry over time during {_VOC}: temperatures, RAM, swap and "
    f"power sampled every telemetry interval (default 0.5 s) by the best available backend "
    f"(jtop, NVML, psutil); one line per run, 'no sensor' where nothing was measured. "
    f"{_WEIGHTS}",
    "latency_distribution": f"Distribution of per-batch model latency (ms, batch 1, so per "
    f"image) in {_SPEED}, boxes per model and mode, one panel per device (box: quartiles, "
    f"whiskers: 1.5 IQR). {_FAILED} {_WEIGHTS}",
}
