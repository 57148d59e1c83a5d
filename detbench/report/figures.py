"""The study's figures, drawn from ``summary.csv`` (DESIGN §1 report stage, issue 8 item 6).

``FIGURES`` maps each figure's key (its file stem) to its caption. ``draw_all`` writes one PNG per
key, always, so Snakemake can declare them all as outputs; ``build`` returns one figure as a
matplotlib ``Figure`` so its title can be checked without reading pixels. Failed runs are drawn
as failed with their reason, figures with no runs say "no runs", and every figure made from
untrained weights says so in its title. Only the Agg canvas is used (no pyplot, no global state).
"""

from __future__ import annotations

import itertools
import json
import os
import textwrap
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

import matplotlib as mpl
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch, Rectangle
from matplotlib.ticker import FuncFormatter
from matplotlib.transforms import blended_transform_factory

from detbench.contract import MXNET
from detbench.data.voc import VOC_CLASSES
from detbench.report.aggregate import AP_COLUMNS, read_summary
from detbench.report.captions import FIGURES
from detbench.report.modes import mode_rows, verdict_note

DPI = 120

_ORDER = ("imperative", "hybrid", "cpu")
_FAILED_STYLE = {"facecolor": "0.93", "edgecolor": "0.6", "hatch": "///", "linewidth": 0}
_TRACES = {
    "gpu_temp_c": "GPU temp (°C)",
    "cpu_temp_c": "CPU temp (°C)",
    "ram_used_mb": "RAM used (MB)",
    "swap_used_mb": "swap used (MB)",
    "power_w": "power (W)",
}


def _style() -> AbstractContextManager:
    return mpl.rc_context(
        {**sns.axes_style("whitegrid"), **sns.plotting_context("notebook", font_scale=0.8)}
    )


style = _style  # the report's plot style, for figures drawn elsewhere (report.backends)


def _order(values) -> list[str]:
    """Distinct values as text: imperative before hybrid, cpu before GPUs, the rest sorted."""
    distinct = sorted({str(v) for v in values})
    return sorted(distinct, key=lambda v: (_ORDER.index(v) if v in _ORDER else len(_ORDER), v))


def _short(error, width: int = 58) -> str:
    line = (str(error).strip().splitlines() or [""])[0]
    return line if len(line) <= width else line[: width - 1] + "…"


def _present(value) -> bool:
    if isinstance(value, list | tuple):
        return len(value) > 0
    return value is not None and not pd.isna(value)


def _fmt(value) -> str:
    return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)


def _context(runs: pd.DataFrame) -> str:
    parts = []
    for col, text in (("batch_size", "batch {}"), ("image_count", "{} images/run"), ("host", "{}")):
        values = sorted({_fmt(v) for v in runs[col] if _present(v)})
        if values:
            parts.append(text.format(", ".join(values)))
    return " · ".join(parts)


def _title(fig: Figure, text: str, runs: pd.DataFrame, about_map: bool = False) -> None:
    if runs["untrained"].any():
        text += " — UNTRAINED WEIGHTS: mAP meaningless" if about_map else " — untrained weights"
    context = _context(runs)
    fig.suptitle(text + (f"\n{context}" if context else ""), fontsize=11, fontweight="bold")


def _figure(nrows=1, ncols=1, size=(9.0, 4.8), notes=(), sharex=False, sharey=False):
    """A constrained-layout figure with a grid of axes and, when ``notes`` are given, a text
    panel under it listing them (failed runs and their reasons)."""
    note_h = 0.25 + 0.2 * len(notes) if notes else 0
    fig = Figure(figsize=(size[0], size[1] + note_h), dpi=DPI, layout="constrained")
    ratios = [size[1] / nrows] * nrows + ([note_h] if notes else [])
    grid = fig.add_gridspec(len(ratios), ncols, height_ratios=ratios)
    axes = []
    for i in range(nrows * ncols):
        first = axes[0] if axes else None
        axes.append(
            fig.add_subplot(
                grid[i // ncols, i % ncols],
                sharex=first if sharex else None,
                sharey=first if sharey else None,
            )
        )
    if notes:
        panel = fig.add_subplot(grid[nrows, :])
        panel.axis("off")
        panel.text(0, 1, "\n".join(notes), va="top", fontsize=8, transform=panel.transAxes)
    return fig, axes


def _note(ax, text: str, clear: bool = True) -> None:
    ax.text(
        0.5, 0.5, text, ha="center", va="center", fontsize=13, color="0.45", transform=ax.transAxes
    )
    if clear:
        ax.set_xticks([])
        ax.set_yticks([])


def _no_runs(title: str, runs: pd.DataFrame, about_map: bool = False) -> Figure:
    fig, (ax,) = _figure()
    _note(ax, "no runs")
    _title(fig, title, runs, about_map)
    return fig


def _run_name(rec: dict) -> str:
    mode = f" {rec['mode']}" if _present(rec.get("mode")) else ""
    return f"{rec['model']} · {rec['device']}{mode}"


def _notes(runs: pd.DataFrame, missing: str) -> list[str]:
    """One line per run that a figure cannot draw: failed with its error, else ``missing``."""
    return [
        f"FAILED  {_run_name(rec)}: {_short(rec['error'], 110)}"
        if rec["status"] == "failed"
        else f"{_run_name(rec)}: {missing}"
        for rec in runs.to_dict("records")
    ]


def _bar(ax, pos, width, value, color, label_at=None) -> None:
    """A bar labelled with its value, above ``label_at`` (the top of its error bar) if given."""
    bars = ax.bar(pos, value, width, color=color)
    if label_at is None:
        ax.bar_label(bars, fmt="%.3g", fontsize=8, padding=2)
    else:
        ax.annotate(f"{value:.3g}", (pos, label_at), xytext=(0, 2), textcoords="offset points",
                    ha="center", va="bottom", fontsize=8)  # fmt: skip


def _box(ax, pos, width, values, color, label_at=None) -> None:
    ax.boxplot(
        values,
        positions=[pos],
        widths=width * 0.8,
        patch_artist=True,
        manage_ticks=False,
        boxprops={"facecolor": color},
        medianprops={"color": "black"},
        flierprops={"markersize": 3},
    )


def _spread(ax, pos, rec, value, columns) -> int:
    """An error bar from ``columns`` (min, max) around ``rec[value]`` when the run repeated its
    measurement (``repeats`` > 1); returns the repeats drawn (0 when none)."""
    low, high = (rec.get(c) for c in columns)
    repeats = rec.get("repeats")
    if not (_present(repeats) and repeats > 1 and _present(low) and _present(high)):
        return 0
    mid = rec[value]
    ax.errorbar(pos, mid, yerr=[[mid - low], [high - mid]], fmt="none", ecolor="black",
                elinewidth=1.2, capsize=4, zorder=4)  # fmt: skip
    return int(repeats)


def _grouped(ax, runs, *, x, hue, value, draw, missing, spread=None, group_notes=None) -> None:
    """Grouped marks (``draw``: bars or boxes) per ``x`` and ``hue``; a failed run is a hatched
    placeholder annotated with its error, an ok run without a value says ``missing``.
    ``spread``: (min, max) columns drawn as an error bar on runs with several repeats;
    ``group_notes``: x value -> a note printed above its group."""
    xs, hues = _order(runs[x]), _order(runs[hue])
    width = 0.8 / len(hues)
    colors = dict(zip(hues, sns.color_palette(n_colors=len(hues)), strict=True))
    along = blended_transform_factory(ax.transData, ax.transAxes)
    shown, repeats = set(), set()
    for rec in runs.to_dict("records"):
        pos = xs.index(str(rec[x])) - 0.4 + width * (hues.index(str(rec[hue])) + 0.5)
        note = None
        if rec["status"] == "failed":
            shown.add("failed run")
            ax.axvspan(pos - width / 2, pos + width / 2, **_FAILED_STYLE)
            note = textwrap.fill(f"failed: {_short(rec['error'], 90)}", 34, max_lines=3)
        elif not _present(rec[value]):
            note = missing
        else:
            drawn = _spread(ax, pos, rec, value, spread) if spread else 0
            top = rec[spread[1]] if drawn else None
            draw(ax, pos, width * 0.9, rec[value], colors[str(rec[hue])], label_at=top)
            shown.add(str(rec[hue]))
            repeats.add(drawn)
        if note:
            ax.text(
                pos,
                0.03,
                note,
                rotation=90,
                ha="center",
                va="bottom",
                fontsize=8,
                color="0.2",
                transform=along,
            )
    ax.set_xticks(range(len(xs)), xs, rotation=12, ha="right")
    ax.set_xlim(-0.5, len(xs) - 0.5)
    ax.margins(y=0.12)
    notes = {xs.index(k): v for k, v in (group_notes or {}).items() if k in xs}
    if notes:
        ax.set_ylim(top=ax.get_ylim()[1] * 1.3)
    for i, text in notes.items():
        ax.text(i, 0.98, textwrap.fill(text, 16), ha="center", va="top", fontsize=7.5,
                color="0.15", transform=along)  # fmt: skip
    if not shown - {"failed run"}:
        ax.set(ylim=(0, 1), yticklabels=[])
    handles = [Patch(color=colors[h], label=h) for h in hues if h in shown]
    handles += [Patch(**_FAILED_STYLE, label="failed run")] if "failed run" in shown else []
    if repeats - {0}:
        counts = "/".join(str(n) for n in sorted(repeats - {0}))
        handles.append(Line2D([], [], color="black", marker="_", markersize=8,
                              label=f"min–max of {counts} repeats"))  # fmt: skip
    ax.legend(handles=handles, title=hue, loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8)


def _grouped_figure(
    runs,
    title,
    *,
    value,
    ylabel,
    hue,
    x="model",
    xlabel="model",
    panel=None,
    draw=_bar,
    missing="no data",
    about_map=False,
    sharey=True,
    spread=None,
    group_notes=None,
) -> Figure:
    panels = _order(runs[panel]) if panel and not runs.empty else [None]
    fig, axes = _figure(ncols=len(panels), size=(4.5 + 4.5 * len(panels), 4.8), sharey=sharey)
    for ax, name in zip(axes, panels, strict=True):
        sub = runs if name is None else runs[runs[panel].astype(str) == name]
        if sub.empty:
            _note(ax, "no runs")
        else:
            _grouped(ax, sub, x=x, hue=hue, value=value, draw=draw, missing=missing, spread=spread,
                     group_notes=group_notes)  # fmt: skip
        ax.set(ylabel=ylabel, xlabel=xlabel, title=f"{panel}: {name}" if name else "")
    _title(fig, title, runs, about_map)
    return fig


def _kind(summary: pd.DataFrame, kind: str) -> pd.DataFrame:
    return summary[summary["kind"] == kind]


_WALL_SPREAD = ("total_wall_s_min", "total_wall_s_max")


def _mode_verdicts(runs: pd.DataFrame) -> dict[str, str]:
    """x label (``run``) -> its model's imperative-vs-hybrid verdict (as in modes.csv)."""
    table = mode_rows(runs)
    notes = {(r["model"], r["device"]): verdict_note(r) for r in table.to_dict("records")}
    return {
        run: notes[(model, device)]
        for run, model, device in zip(runs["run"], runs["model"], runs["device"], strict=True)
        if (model, device) in notes
    }


def _speed_modes(on_gpu: bool) -> Callable[[pd.DataFrame, Path], Figure]:
    def build(summary: pd.DataFrame, root: Path) -> Figure:
        runs = _kind(summary, "speed")
        runs = runs[(runs["device"] != "cpu") == on_gpu].copy()
        several = runs["device"].nunique() > 1
        runs["run"] = runs["model"] + (" · " + runs["device"] if several else "")
        verdicts = _mode_verdicts(runs)
        where = "GPU" if on_gpu else "CPU"
        return _grouped_figure(
            runs,
            f"Imperative vs hybrid on {where}: batch-1 speed run total time",
            value="total_wall_s",
            ylabel="total wall time (s)",
            hue="mode",
            x="run",
            spread=_WALL_SPREAD,
            group_notes=verdicts,
        )

    return build


def _voc_bars(title, value, ylabel, missing="no data", about_map=False):
    def build(summary: pd.DataFrame, root: Path) -> Figure:
        return _grouped_figure(
            _kind(summary, "voc"),
            title,
            value=value,
            ylabel=ylabel,
            hue="device",
            missing=missing,
            about_map=about_map,
        )

    return build


def _cpu_vs_gpu(summary: pd.DataFrame, root: Path) -> Figure:
    return _grouped_figure(
        _kind(summary, "speed"),
        "CPU vs GPU: batch-1 speed run total time",
        value="total_wall_s",
        ylabel="total wall time (s)",
        hue="device",
        panel="mode",
        spread=_WALL_SPREAD,
    )


def _batch_ms(run_dir: Path) -> list[float]:
    path = run_dir / "result.json"
    timings = json.loads(path.read_text()).get("timings") if path.is_file() else None
    return list((timings or {}).get("batch_ms") or [])


def _latency(summary: pd.DataFrame, root: Path) -> Figure:
    runs = _kind(summary, "speed").copy()
    runs["batch_ms"] = [_batch_ms(root / d) for d in runs["run_dir"]]
    return _grouped_figure(
        runs,
        "Per-image model latency, batch-1 speed run",
        value="batch_ms",
        ylabel="model latency per batch (ms)",
        hue="mode",
        panel="device",
        draw=_box,
        missing="no timings",
        sharey=False,
    )


def _pareto_front(points: pd.DataFrame) -> pd.DataFrame:
    """The runs no other run beats on both throughput and mAP, by rising throughput."""
    best, keep = float("-inf"), []
    for idx, rec in points.sort_values(["images_per_s", "mAP"], ascending=False).iterrows():
        if rec["mAP"] > best:
            best = rec["mAP"]
            keep.append(idx)
    return points.loc[keep].sort_values("images_per_s")


def _pareto(summary: pd.DataFrame, root: Path) -> Figure:
    runs = _kind(summary, "voc")
    usable = (runs["status"] == "ok") & runs["mAP"].notna() & runs["images_per_s"].notna()
    fig, (ax,) = _figure(size=(9, 5.5), notes=_notes(runs[~usable], "no mAP (not evaluated)"))
    points = runs[usable]
    if points.empty:
        _note(ax, "no runs")
    devices = _order(points["device"])
    for device, color in zip(devices, sns.color_palette(n_colors=len(devices)), strict=True):
        mine = points[points["device"] == device]
        ax.scatter(mine["images_per_s"], mine["mAP"], s=60, color=color, label=device, zorder=3)
        front = _pareto_front(mine)
        ax.plot(front["images_per_s"], front["mAP"], "--", color=color, label=f"{device} front")
        for rec in mine.to_dict("records"):
            ax.annotate(
                rec["model"],
                (rec["images_per_s"], rec["mAP"]),
                fontsize=8,
                xytext=(5, 4),
                textcoords="offset points",
            )
    if not points.empty:
        ax.legend(title="device", loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8)
        ax.set_ylim(bottom=0)
    ax.set(xlabel="throughput, voc run (images/s)", ylabel="mAP (VOC07, IoU 0.5)")
    _title(fig, "mAP vs FPS, Pareto front per device", runs, True)
    return fig


def _ap_heatmap(summary: pd.DataFrame, root: Path) -> Figure:
    runs = _kind(summary, "voc")
    title = "Average precision per class, voc run"
    if runs.empty:
        return _no_runs(title, runs, about_map=True)
    fig, (ax,) = _figure(size=(13, 2.4 + 0.45 * len(runs)))
    data = runs[AP_COLUMNS].astype(float).set_axis(list(VOC_CLASSES), axis=1)
    data.index = [_run_name(rec) for rec in runs.to_dict("records")]
    sns.heatmap(
        data,
        ax=ax,
        vmin=0,
        vmax=1,
        cmap="viridis",
        annot=len(runs) <= 12,
        fmt=".2f",
        annot_kws={"fontsize": 7},
        linewidths=0.5,
        cbar_kws={"label": "AP (IoU 0.5)"},
    )
    ax.set_facecolor("0.85")
    ax.grid(False)
    for row, rec in enumerate(runs.to_dict("records")):
        if rec["status"] == "failed":
            text = f"failed: {_short(rec['error'], 100)}"
        elif not data.iloc[row].notna().any():
            text = "no AP: not evaluated"
        else:
            continue
        ax.text(len(VOC_CLASSES) / 2, row + 0.5, text, ha="center", va="center", fontsize=9)
    ax.set(xlabel="VOC class (grey: no AP)", ylabel="model · device")
    _title(fig, title, runs, about_map=True)
    return fig


def _traces(runs: pd.DataFrame, root: Path, key: Callable[[dict], object]):
    """The telemetry.csv of each ok run by ``key(run)``, and a note per ok run without one. A
    failed run is drawn as failed, never as a trace of the seconds before it failed."""
    traces, notes = {}, []
    for rec in runs[runs["status"] == "ok"].to_dict("records"):
        path = root / rec["run_dir"] / "telemetry.csv"
        if path.is_file():
            traces[key(rec)] = pd.read_csv(path)
        else:
            notes.append(f"{_run_name(rec)}: no telemetry.csv")
    return traces, notes


def _failed_handles(failed: pd.DataFrame) -> list:
    """Legend entries marking each failed run as failed (hatched, no line)."""
    return [
        Patch(**_FAILED_STYLE, label=f"{_run_name(rec)}: FAILED")
        for rec in failed.to_dict("records")
    ]


def _telemetry(summary: pd.DataFrame, root: Path) -> Figure:
    runs = _kind(summary, "voc")
    title = "Device telemetry during each voc run"
    if runs.empty:
        return _no_runs(title, runs)
    failed = runs[runs["status"] == "failed"]
    traces, missing = _traces(runs, root, _run_name)
    notes = _notes(failed, "") + missing
    fig, axes = _figure(nrows=len(_TRACES), size=(10, 9.5), notes=notes, sharex=True)
    colors = dict(zip(traces, sns.color_palette(n_colors=max(len(traces), 1)), strict=False))
    for ax, (metric, label) in zip(axes, _TRACES.items(), strict=True):
        drawn = False
        for name, frame in traces.items():
            if metric in frame and frame[metric].notna().any():
                ax.plot(frame["t_s"], frame[metric], color=colors[name], linewidth=1.3)
                drawn = True
        if not drawn:
            ax.set_yticks([])
            none = not traces and not failed.empty
            _note(ax, "no trace: every run failed" if none else "no sensor", clear=False)
        ax.set_ylabel(label)
        ax.tick_params(labelbottom=ax is axes[-1])
    axes[-1].set_xlabel("time since run start (s)")
    handles = [Line2D([], [], color=c, label=name) for name, c in colors.items()]
    handles += _failed_handles(failed)
    if handles:
        axes[0].legend(handles=handles, title="run", loc="upper left", bbox_to_anchor=(1.01, 1))
    _title(fig, title, runs)
    return fig


# ---------------------------------------------------------------- devices compared (a fleet)

_NOTES_WIDTH = 11.0  # inches: a failed run's line under a figure fits without squeezing the plot


def _devices(runs: pd.DataFrame) -> list[str]:
    """The devices in the runs: cpu and GPUs first, then the rest (devices over SSH) sorted."""
    return _order(runs["device"])


def _device_label(runs: pd.DataFrame, device: str) -> str:
    hosts = sorted({str(h) for h in runs.loc[runs["device"] == device, "host"] if _present(h)})
    return device + (f"\n{', '.join(hosts)}" if hosts else "")


def _fps_by_device(summary: pd.DataFrame, root: Path) -> Figure:
    """Throughput of each model (rows) on each device (columns): the cell's text is images/s,
    its colour the share of that model's fastest device; failed runs are hatched cells."""
    runs = _kind(summary, "voc")
    title = "Throughput per model per device, voc run"
    if runs.empty:
        return _no_runs(title, runs)
    models, devices = _order(runs["model"]), _devices(runs)
    fps = runs.pivot_table(index="model", columns="device", values="images_per_s", aggfunc="max")
    fps = fps.reindex(index=models, columns=devices).astype(float)
    share = fps.div(fps.max(axis=1), axis=0)
    notes = _notes(runs[runs["status"] == "failed"], "")
    notes += _notes(runs[(runs["status"] == "ok") & runs["images_per_s"].isna()], "no throughput")
    size = (max(_NOTES_WIDTH, 3.5 + 1.5 * len(devices)), 1.9 + 0.55 * len(models))
    fig, (ax,) = _figure(size=size, notes=notes)
    sns.heatmap(
        share,
        ax=ax,
        vmin=0,
        vmax=1,
        cmap="crest",
        annot=fps.map(lambda v: "" if pd.isna(v) else f"{v:.3g}"),
        fmt="",
        annot_kws={"fontsize": 9},
        linewidths=1,
        linecolor="white",
        cbar_kws={"label": "share of the model's fastest device"},
    )
    ax.set_facecolor("white")
    ax.grid(False)
    for row, model in enumerate(models):
        for col, device in enumerate(devices):
            if not pd.isna(fps.loc[model, device]):
                continue
            mine = runs[(runs["model"] == model) & (runs["device"] == device)]
            failed = (mine["status"] == "failed").any()
            if failed:
                ax.add_patch(Rectangle((col, row), 1, 1, **_FAILED_STYLE))
            text = "FAILED" if failed else ("no data" if len(mine) else "no run")
            ax.text(col + 0.5, row + 0.5, text, ha="center", va="center", fontsize=8, color="0.3")
    ax.set_xticks([i + 0.5 for i in range(len(devices))], [_device_label(runs, d) for d in devices])
    ax.tick_params(axis="x", rotation=0)
    ax.tick_params(axis="y", rotation=0)
    ax.set(xlabel="device (cell: images/s)", ylabel="model")
    _title(fig, title, runs)
    return fig


def _pareto_by_device(summary: pd.DataFrame, root: Path) -> Figure:
    """mAP against throughput, one colour per device and one marker per model; a thin line joins
    one model's runs across the devices and the black line is the fleet's Pareto front."""
    runs = _kind(summary, "voc")
    usable = (runs["status"] == "ok") & runs["mAP"].notna() & (runs["images_per_s"] > 0)
    notes = _notes(runs[~usable], "no mAP (not evaluated)")
    fig, (ax,) = _figure(size=(_NOTES_WIDTH, 5.5), notes=notes)
    points = runs[usable]
    title = "mAP vs FPS across devices, fleet Pareto front"
    if points.empty:
        _note(ax, "no runs")
        _title(fig, title, runs, True)
        return fig
    devices, models = _devices(points), _order(points["model"])
    colors = dict(zip(devices, sns.color_palette(n_colors=len(devices)), strict=True))
    markers = dict(zip(models, itertools.cycle("osD^vP*Xph"), strict=False))
    for model in models:
        mine = points[points["model"] == model].sort_values("images_per_s")
        ax.plot(mine["images_per_s"], mine["mAP"], color="0.75", linewidth=0.8, zorder=1)
    for rec in points.to_dict("records"):
        ax.scatter(
            rec["images_per_s"],
            rec["mAP"],
            s=70,
            color=colors[rec["device"]],
            marker=markers[rec["model"]],
            edgecolor="black",
            linewidth=0.5,
            zorder=3,
        )
    front = _pareto_front(points)
    ax.plot(front["images_per_s"], front["mAP"], "-", color="black", linewidth=1.6, zorder=2)
    for rec in front.to_dict("records"):
        ax.annotate(
            f"{rec['model']} · {rec['device']}",
            (rec["images_per_s"], rec["mAP"]),
            fontsize=8,
            xytext=(6, 5),
            textcoords="offset points",
        )
    fps = points["images_per_s"]
    if fps.max() / fps.min() > 20:
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.set_ylim(bottom=-0.03 * max(points["mAP"].max(), 0.01))
    ax.set(xlabel="throughput, voc run (images/s)", ylabel="mAP (VOC07, IoU 0.5)")
    handles = [Line2D([], [], marker="o", ls="", color=colors[d], label=d) for d in devices]
    handles += [Line2D([], [], color="black", label="fleet Pareto front")]
    handles += [
        Line2D([], [], marker=markers[m], ls="", color="0.5", mec="black", label=m) for m in models
    ]
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8)
    _title(fig, title, runs, True)
    return fig


def _energy_by_device(summary: pd.DataFrame, root: Path) -> Figure:
    return _grouped_figure(
        _kind(summary, "voc"),
        "Energy per image per device, voc run",
        value="energy_j_per_image",
        ylabel="energy per image (J)",
        x="device",
        xlabel="device",
        hue="model",
        missing="no power sensor",
    )


def _telemetry_by_device(summary: pd.DataFrame, root: Path) -> Figure:
    """The telemetry traces of the voc runs, one column of panels per device, one line per
    model (the same colour on every device), each row on one y scale."""
    runs = _kind(summary, "voc")
    title = "Device telemetry during the voc runs, devices side by side"
    if runs.empty:
        return _no_runs(title, runs)
    devices, models = _devices(runs), _order(runs["model"])
    failed = runs[runs["status"] == "failed"]
    traces, missing = _traces(runs, root, lambda rec: (rec["device"], rec["model"]))
    notes = _notes(failed, "") + missing
    nrows, ncols = len(_TRACES), len(devices)
    size = (max(_NOTES_WIDTH, 2.2 + 3.2 * ncols), 9.5)
    fig, axes = _figure(nrows=nrows, ncols=ncols, size=size, notes=notes)
    colors = dict(zip(models, sns.color_palette(n_colors=len(models)), strict=True))
    grid = [axes[row * ncols : (row + 1) * ncols] for row in range(nrows)]
    for row, (metric, label) in enumerate(_TRACES.items()):
        drawn = []
        for col, (ax, device) in enumerate(zip(grid[row], devices, strict=True)):
            if col:
                ax.sharey(grid[row][0])
            if row:
                ax.sharex(grid[0][col])
            for model in models:
                frame = traces.get((device, model))
                if frame is not None and metric in frame and frame[metric].notna().any():
                    ax.plot(frame["t_s"], frame[metric], color=colors[model], linewidth=1.3)
                    drawn.append(ax)
            if ax not in drawn:
                traced = any(device == d for d, _ in traces)
                failed_here = not traced and device in set(failed["device"])
                _note(ax, "no trace: failed" if failed_here else "no sensor", clear=False)
            ax.tick_params(labelleft=ax is (drawn or [None])[0], labelbottom=row == nrows - 1)
        grid[row][0].set_ylabel(label)
    for ax, device in zip(grid[0], devices, strict=True):
        ax.set_title(_device_label(runs, device), fontsize=9)
    for ax in grid[-1]:
        ax.set_xlabel("time since run start (s)")
    handles = [Line2D([], [], color=c, label=m) for m, c in colors.items()]
    handles += _failed_handles(failed)
    axes[ncols - 1].legend(handles=handles, title="model", loc="upper left",
                           bbox_to_anchor=(1.01, 1), fontsize=8)  # fmt: skip
    _title(fig, title, runs)
    return fig


_BUILDERS: dict[str, Callable[[pd.DataFrame, Path], Figure]] = {
    "speed_modes_gpu": _speed_modes(on_gpu=True),
    "speed_modes_cpu": _speed_modes(on_gpu=False),
    "speed_cpu_vs_gpu": _cpu_vs_gpu,
    "voc_total_time": _voc_bars(
        "VOC2007 test: total time of the voc run", "total_wall_s", "total wall time (s)"
    ),
    "voc_fps": _voc_bars(
        "VOC2007 test: throughput of the voc run", "images_per_s", "throughput (images/s)"
    ),
    "voc_map": _voc_bars(
        "VOC2007 test: mAP", "mAP", "mAP (VOC07, IoU 0.5)", missing="not evaluated", about_map=True
    ),
    "voc_gpu_temp_delta": _voc_bars(
        "GPU temperature change during the voc run",
        "gpu_temp_c_delta",
        "end − start (°C)",
        "no sensor",
    ),
    "voc_swap_delta": _voc_bars(
        "Swap change during the voc run", "swap_used_mb_delta", "end − start (MB)", "no sensor"
    ),
    "pareto_map_fps": _pareto,
    "ap_heatmap": _ap_heatmap,
    "telemetry_traces": _telemetry,
    "latency_distribution": _latency,
    "fps_by_device": _fps_by_device,
    "pareto_by_device": _pareto_by_device,
    "energy_by_device": _energy_by_device,
    "telemetry_by_device": _telemetry_by_device,
}


def build(key: str, summary: pd.DataFrame, root: Path | str = ".") -> Figure:
    """The figure ``key`` of FIGURES drawn from a summary table; run dirs resolve under ``root``."""
    if key not in _BUILDERS:
        raise KeyError(f"expected a figure key in {sorted(FIGURES)}, got {key!r}")
    with _style():
        return _BUILDERS[key](with_backend_labels(summary), Path(root))


def with_backend_labels(summary: pd.DataFrame) -> pd.DataFrame:
    """The summary with each run of a backend other than MXNet shown as its own model,
    ``<model> [<backend>]``, so every figure compares backends as it compares models."""
    if "backend" not in summary.columns:
        return summary
    other = summary["backend"].fillna(MXNET).ne(MXNET)
    if not other.any():
        return summary
    summary = summary.copy()
    summary.loc[other, "model"] = (
        summary.loc[other, "model"] + " [" + summary.loc[other, "backend"] + "]"
    )
    return summary


def draw(key: str, summary: pd.DataFrame, path: Path | str, root: Path | str = ".") -> Path:
    """Write the figure ``key`` as a PNG to ``path``, completely or not at all; run dirs named in
    the summary resolve under ``root`` (the repo root)."""
    with _style():
        return save_png(build(key, summary, root), path)


def save_png(figure: Figure, path: Path | str, dpi: int = DPI) -> Path:
    """Write ``figure`` as a PNG to ``path``, completely or not at all."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        figure.savefig(tmp, format="png", dpi=dpi)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def draw_all(summary_csv: Path | str, out_dir: Path | str, root: Path | str = ".") -> list[Path]:
    """Write ``<out_dir>/<key>.png`` for every key of FIGURES (always, even with no runs) and
    return the paths; run dirs named in the summary resolve under ``root`` (the repo root)."""
    summary = read_summary(summary_csv)
    return [draw(key, summary, Path(out_dir) / f"{key}.png", root) for key in FIGURES]
