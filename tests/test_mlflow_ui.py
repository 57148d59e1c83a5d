"""MLflow's UI on a store that detbench's track code filled, served by ``mlflow server`` on a free
loopback port (as ``detbench ui`` serves it, with one worker) and opened in Chromium as a new
user would: a fresh profile for every page.

What MLflow 3.17 opens an experiment on is decided in the browser, not by the experiment: its
"GenAI | Model training" workflow type comes from the page's ``?workflowType=`` parameter, else
from the browser's localStorage (``mlflow.workflowType_v1``, written by the sidebar switch), else
GenAI. The experiment's ``mlflow.experimentKind`` tag is not read: the OSS build turns on
workflow-based navigation, which derives the kind from the workflow type. So detbench's link
carries the parameter (:data:`detbench.track.UI_QUERY`), and the plain link of the experiment
list opens a new browser on the GenAI overview whatever the tag says.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys

import pytest
from mlflow.tracking import MlflowClient
from test_html_report import CHROMIUM_FLAGS, text_of, visible_dom
from test_server import make_run

from detbench import server, track

RUNS_TABLE = r"detbench-ui Runs .* matching runs"
GENAI = "Evaluation runs"  # the GenAI sidebar's entry; the model-training sidebar has none


@pytest.fixture(scope="module")
def mlflow_ui(tmp_path_factory):
    """A store with two voc runs logged by :func:`detbench.track.log_run_dir`, and MLflow's
    server on it: (server URL, experiment id, the run names)."""
    root = tmp_path_factory.mktemp("mlflow-ui")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)
        # The store as `make demo` leaves it (mlruns/mlflow.db), named absolutely: MLflow caches
        # one database engine per URI in a process, so the default relative URI would reach an
        # earlier test's store.
        patch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{root}/mlruns/mlflow.db")
        record = track.ensure_experiment("ui", root / "mlflow_experiment.json")
        for device in ("nano00", "nano01"):
            run_dir = make_run(root, device)
            track.log_run_dir(run_dir, root / "mlflow_experiment.json", run_dir / "mlflow.json")
        port = server.free_port()
        command = [sys.executable, "-m", "mlflow", "server", "--backend-store-uri",
                   track.tracking_uri(), "--default-artifact-root", track.artifact_root(),
                   "--host", "127.0.0.1", "--port", str(port), "--workers", "1"]  # fmt: skip
    with open(root / "ui.log", "wb") as log:
        ui = subprocess.Popen(command, cwd=root, stdout=log, stderr=subprocess.STDOUT,
                              start_new_session=True)  # fmt: skip
    uri = f"http://127.0.0.1:{port}"
    try:
        server.wait_healthy(uri, ui)
        names = {
            f"voc ssd_512_mobilenet1.0_voc mxnet {device} hybrid" for device in ("nano00", "nano01")
        }
        yield uri, record["experiment_id"], names
    finally:
        os.killpg(ui.pid, signal.SIGTERM)  # the server and its worker
        ui.wait(timeout=60)


def opened(chromium: str, url: str, profile) -> str:
    """The visible text of ``url`` once MLflow's app has loaded it in a fresh browser profile."""
    flags = [f for f in CHROMIUM_FLAGS if not f.startswith("--virtual-time-budget")]
    command = [chromium, *flags, "--virtual-time-budget=30000", f"--user-data-dir={profile}",
               "--dump-dom", url]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-2000:]
    return text_of(re.sub(r"<style\b.*?</style>", "", visible_dom(done.stdout), flags=re.DOTALL))


def test_detbench_link_opens_the_experiment_on_its_runs_table(mlflow_ui, chromium, tmp_path):
    """The experiment's link that ``detbench ui`` prints, opened in a new browser."""
    from detbench.cli import _experiments

    uri, experiment_id, names = mlflow_ui
    assert _experiments(uri) == [("detbench-ui", experiment_id)]
    page = opened(chromium, track.ui_url(uri, experiment_id), tmp_path / "profile")
    assert re.search(RUNS_TABLE, page), page[-2000:]
    for name in names:
        assert name in page, page[-2000:]
    assert GENAI not in page and "Overview" not in page


def test_plain_experiment_link_opens_a_new_browser_on_genai_whatever_the_kind(
    mlflow_ui, chromium, tmp_path
):
    """MLflow 3.17's behaviour, pinned: the experiment list's own link (no ``workflowType``)
    opens a new browser on the GenAI overview although the experiment is tagged a model-training
    one. If this fails, MLflow now opens it otherwise: check whether UI_QUERY is still needed."""
    uri, experiment_id, names = mlflow_ui
    tags = MlflowClient(uri).get_experiment(experiment_id).tags
    assert tags["mlflow.experimentKind"] == "custom_model_development"
    page = opened(chromium, f"{uri}/#/experiments/{experiment_id}", tmp_path / "profile")
    assert GENAI in page and "Overview" in page, page[-2000:]
    assert not re.search(RUNS_TABLE, page) and not any(name in page for name in names)
