"""The report rebuilt from a tracking server: ``detbench report --from-mlflow EXPERIMENT``.

Every current run of the experiment (not superseded, terminated) has its run files downloaded
from MLflow into ``DIR/runs/<kind>/<model>/<backend>/<device id>-<mode>/`` (``result.json``,
``spec.json``, ``telemetry.csv`` and, for voc runs, ``map.json``: the artifacts each track job
logged), and ``DIR/summary.csv``, ``DIR/modes.csv`` and ``DIR/figures/*.png`` are made from them
by the same code as the workflow's ``aggregate``, ``modes_table`` and ``plots`` rules. So a
report can take in devices that were driven from other workstations, and equals the report of
the same run directories.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from detbench import contract, track
from detbench.report import aggregate, figures
from detbench.report.modes import write_modes

FILES = (contract.RESULT, contract.SPEC, contract.TELEMETRY, contract.MAP)
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+@-]*")


def _experiment(client, name: str):
    for candidate in (name, track.experiment_name(name)):
        found = client.get_experiment_by_name(candidate)
        if found is not None:
            return found
    raise aggregate.ReportError(
        f"MLflow at {client.tracking_uri}: no experiment {name!r} (nor "
        f"{track.experiment_name(name)!r}); experiments are named detbench-<config name>"
    )


def current_runs(client, experiment_id: str) -> list:
    """The experiment's current detbench runs: tagged with a key, not superseded, terminated
    (a half-logged run is left out); the newest one per key if a race left two."""
    runs, token = [], None
    while True:
        page = client.search_runs(
            [experiment_id], filter_string="tags.superseded = 'false'", max_results=1000,
            order_by=["attributes.start_time DESC"], page_token=token,
        )  # fmt: skip
        runs += page
        token = page.token
        if not token:
            break
    chosen: dict[str, object] = {}
    for run in runs:
        key = run.data.tags.get("detbench.key")
        if key and run.info.end_time and run.info.status in ("FINISHED", "FAILED"):
            chosen.setdefault(key, run)
    return [chosen[key] for key in sorted(chosen)]


def _run_dir(root: Path, tags: dict) -> Path:
    """Where a run's files go: its kind, model, backend, and device id (``cpu@host`` for a
    local device, so two workstations' ``cpu`` runs stay apart) with its mode."""
    device = tags.get("device_id") or tags.get("device")
    backend = tags.get("backend") or contract.MXNET
    parts = [tags.get("kind"), tags.get("model"), backend, f"{device}-{tags.get('mode')}"]
    for part in parts:
        if not isinstance(part, str) or not _NAME.fullmatch(part):
            raise aggregate.ReportError(
                f"expected run tags kind/model/backend/device/mode as plain names, got {parts}"
            )
    return root.joinpath(*parts)


def download_runs(experiment: str, out_dir: Path | str, uri: str | None = None) -> list[Path]:
    """Download the run files of ``experiment``'s current runs into ``out_dir/runs/`` (replacing
    what an earlier report left there); the run directories, sorted."""
    client = track.mlflow_client(uri or track.tracking_uri())
    found = _experiment(client, experiment)
    root = Path(out_dir) / "runs"
    shutil.rmtree(root, ignore_errors=True)
    run_dirs = []
    for run in current_runs(client, found.experiment_id):
        run_dir = _run_dir(root, run.data.tags)
        if run_dir in run_dirs:
            raise aggregate.ReportError(f"two current runs would share {run_dir}")
        run_dir.mkdir(parents=True)
        present = {artifact.path for artifact in client.list_artifacts(run.info.run_id)}
        for name in FILES:
            if name in present:
                client.download_artifacts(run.info.run_id, name, str(run_dir))
        if not (run_dir / contract.RESULT).is_file():
            raise aggregate.ReportError(f"MLflow run {run.info.run_id} has no {contract.RESULT}")
        run_dirs.append(run_dir)
    return sorted(run_dirs)


def report_from_mlflow(experiment: str, out_dir: Path | str, uri: str | None = None) -> list[Path]:
    """``out_dir/summary.csv``, ``out_dir/modes.csv`` and ``out_dir/figures/<key>.png`` of
    ``experiment``'s current runs in MLflow (``uri``, default
    :func:`detbench.track.tracking_uri`); the files written."""
    out_dir = Path(out_dir)
    run_dirs = download_runs(experiment, out_dir, uri)
    summary = out_dir / "summary.csv"
    aggregate.write_summary(run_dirs, summary)
    write_modes(summary, out_dir / "modes.csv")
    return [summary, out_dir / "modes.csv", *figures.draw_all(summary, out_dir / "figures")]
