"""Figure keys (file stems) and captions; light to import (the Snakefile lists outputs from it)."""

from __future__ import annotations

_SYNC = "MXNet outputs synchronised before each clock read"
_SPEED = (
    "the batch-1 speed run: the post-warm-up loop over the sampled test images resized to "
    f"512x512 and decoded before the timed passes (decoding is timed apart), wall clock, {_SYNC}"
)
_VOC = "the voc run over the VOC2007 test set (batch 8, each model's own GluonCV eval transform)"
_FAILED = "Failed runs are hatched grey placeholders annotated with their error."
_SPREAD = "A black error bar spans the fastest to the slowest pass when speed.repeats > 1."
_VERDICT = (
    "Under each model: hybridizing's speed-up (imperative median pass / hybrid median pass) and "
    "whether every pass of one mode beat every pass of the other ('every pass': outside the "
    "pass-to-pass noise) or their ranges overlap ('within noise'), as in modes.csv."
)
_WEIGHTS = "The title says when the weights were untrained (then mAP means nothing)."
FIGURES: dict[str, str] = {
    "speed_modes_gpu": f"Imperative vs hybridized (hybridize()) execution on GPU: total wall time "
    f"of {_SPEED}; one bar per model and mode (the median pass), lower is better. {_SPREAD} "
    f"{_VERDICT} {_FAILED} {_WEIGHTS}",
    "speed_modes_cpu": f"Imperative vs hybridized (hybridize()) execution on CPU: total wall time "
    f"of {_SPEED}; one bar per model and mode (the median pass), lower is better. {_SPREAD} "
    f"{_VERDICT} {_FAILED} {_WEIGHTS}",
    "speed_cpu_vs_gpu": f"CPU vs GPU: total wall time of {_SPEED}; one panel per execution mode, "
    f"lower is better. {_SPREAD} {_FAILED} {_WEIGHTS}",
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
    f"(jtop, NVML, psutil); one line per ok run, 'no sensor' where nothing was measured. A "
    f"failed run has no line: it is a hatched FAILED legend entry, its error under the plot. "
    f"{_WEIGHTS}",
    "latency_distribution": f"Distribution of per-batch model latency (ms, batch 1, so per "
    f"image) in {_SPEED}, boxes per model and mode, one panel per device (box: quartiles, "
    f"whiskers: 1.5 IQR). {_FAILED} {_WEIGHTS}",
    "fps_by_device": f"Devices compared: throughput (images/s) of {_VOC} for each model (row) on "
    f"each device (column), {_SYNC}. The number is images/s; the colour is the share of that "
    f"model's fastest device, so each row shows where the model runs best. Each device runs its "
    f"own runner (devices over SSH on their own Python). Failed runs are hatched cells marked "
    f"FAILED, their errors listed under the grid; 'no run' where a model was not run there. "
    f"{_WEIGHTS}",
    "pareto_by_device": f"Devices compared: mAP (VOC07, IoU 0.5) against throughput (images/s) "
    f"of {_VOC}, one colour per device and one marker per model; a grey line joins one model's "
    f"runs across the devices, the black line is the fleet's Pareto front (the model and device "
    f"pairs no other pair beats on both), labelled. Throughput on a log scale when it spans more "
    f"than 20x. Runs without both numbers are listed under the plot with their reason. "
    f"{_WEIGHTS}",
    "energy_by_device": f"Devices compared: energy per image of {_VOC}: the power readings of "
    f"the background telemetry (jtop on a Jetson, NVML on an NVIDIA GPU) integrated over the "
    f"whole run, warm-up and model loading included, divided by the run's images (J); one "
    f"group per device, one bar per model, lower "
    f"is better; 'no power sensor' where the device reports no power. {_FAILED} {_WEIGHTS}",
    "telemetry_by_device": f"Devices compared: telemetry over time during {_VOC}, one column per "
    f"device (its host name under it), one row per quantity on one y scale (temperatures, RAM, "
    f"swap, power), one line per model in the same colour on every device; sampled on the device "
    f"every telemetry interval; 'no sensor' where the device measured nothing. Failed runs have "
    f"no line: a hatched FAILED legend entry, their error listed under the panels. {_WEIGHTS}",
}
