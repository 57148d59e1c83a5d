"""``detbench``: single steps outside Snakemake (DESIGN §5c)."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path


def _evaluate(args) -> int:
    from detbench.evaluate import evaluate_files, write_map_json

    result = evaluate_files(
        args.voc_root, args.detections, split=args.split, metric=args.metric,
        published_map=args.published_map, untrained=args.untrained,
    )  # fmt: skip
    write_map_json(result, Path(args.out))
    score = "undefined" if result["mAP"] is None else f"{result['mAP']:.4f}"
    print(f"mAP {score} ({result['metric']}) over {result['images']} images -> {args.out}")
    if result["mAP"] is None:
        print(
            f"detbench evaluate: mAP is undefined: no class has non-difficult ground truth in "
            f"these {result['images']} images of {args.voc_root}; {args.out} records null",
            file=sys.stderr,
        )
    return 0


def _fetch_voc(args) -> int:
    from detbench.data.download import fetch_voc
    from detbench.data.extract import extract_voc_tar

    archive = fetch_voc(args.url, args.md5, Path(args.archive))
    if args.extract_to:
        extract_voc_tar(archive, Path(args.extract_to), args.md5)
    return 0


def _run(args) -> int:
    from detbench.runner.__main__ import main as runner_main

    return runner_main(["run", args.spec])


def _ui(args) -> int:
    from detbench.track import DEFAULT_STORE, NO_TELEMETRY, tracking_uri, ui_url

    uri = tracking_uri()
    command = [
        sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", uri,
        "--default-artifact-root", str(Path(DEFAULT_STORE, "artifacts").resolve()),
        "--host", args.host, "--port", str(args.port),
    ]  # fmt: skip
    server = f"http://{args.host}:{args.port}"
    print(f"MLflow UI on {uri}: {ui_url(server)}", flush=True)
    # MLflow 3.17 opens an experiment as GenAI unless its link asks for model training, and
    # the experiment list's links do not: so give each experiment's runs-table link.
    for name, experiment_id in _experiments(uri):
        print(f"  {name}: {ui_url(server, experiment_id)}", flush=True)
    return subprocess.call(command, env={**NO_TELEMETRY, **os.environ})


def _experiments(uri: str) -> list[tuple[str, str]]:
    """(name, id) of the store's detbench experiments; none when the store cannot be read."""
    from detbench.track import mlflow_client

    try:
        found = mlflow_client(uri).search_experiments(filter_string="name LIKE 'detbench-%'")
    except Exception:  # an empty or unreachable store: the UI itself will say so
        return []
    return sorted((e.name, e.experiment_id) for e in found)


def _server(args) -> int:
    from detbench.server import serve

    return serve(args.backend_store_uri, args.artifacts_destination, args.host, args.port,
                 args.workers)  # fmt: skip


def _track(args) -> int:
    from detbench import track

    for run_dir in args.run_dirs:
        record = track.log_run_dir(run_dir, args.experiment, Path(run_dir) / "mlflow.json")
        print(f"{run_dir}: MLflow run {record['run_id']} ({record['status']}) at "
              f"{record['tracking_uri']}")  # fmt: skip
    return 0


def _report(args) -> int:
    from detbench.report.from_mlflow import report_from_mlflow
    from detbench.track import tracking_uri

    written = report_from_mlflow(args.from_mlflow, args.out)
    print(f"{args.out}: summary.csv and {len(written) - 1} figures from MLflow experiment "
          f"{args.from_mlflow!r} at {tracking_uri()}")  # fmt: skip
    return 0


def build_parser() -> argparse.ArgumentParser:
    from detbench.track import DEFAULT_STORE

    parser = argparse.ArgumentParser(prog="detbench", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    ev = sub.add_parser("evaluate", help="VOC mAP of a detections.npz")
    ev.add_argument("--voc-root", required=True, help="the VOCdevkit directory")
    ev.add_argument("--detections", required=True, help="a detections.npz (DESIGN §4)")
    ev.add_argument("--out", required=True, help="map.json to write")
    ev.add_argument("--metric", choices=["voc07", "area"], default="voc07")
    ev.add_argument("--split", default="test")
    ev.add_argument("--published-map", type=_fraction, default=None)
    ev.add_argument("--untrained", action="store_true", help="weights were untrained")
    ev.set_defaults(func=_evaluate)

    fv = sub.add_parser("fetch-voc", help="download (and extract) VOCtest_06-Nov-2007.tar")
    fv.add_argument("--url", action="append", required=True, help="a mirror; repeat for more")
    fv.add_argument("--md5", default="b6e924de25625d8de591ea690078ad9f")
    fv.add_argument("--archive", default="VOCtest_06-Nov-2007.tar")
    fv.add_argument("--extract-to", default=None, help="VOCdevkit directory to create")
    fv.set_defaults(func=_fetch_voc)

    rn = sub.add_parser("run", help="execute one run spec with the device runner")
    rn.add_argument("spec", help="spec.json inside its run directory")
    rn.set_defaults(func=_run)

    ui = sub.add_parser("ui", help=f"open the MLflow UI on this store ({DEFAULT_STORE}/)")
    ui.add_argument("--host", default="127.0.0.1")
    ui.add_argument("--port", type=int, default=5000)
    ui.set_defaults(func=_ui)

    sv = sub.add_parser("server", help="the team's MLflow tracking server on PostgreSQL")
    sv.add_argument("--backend-store-uri", required=True,
                    help="postgresql://user:password@host:5432/database")  # fmt: skip
    sv.add_argument(
        "--artifacts-destination",
        required=True,
        help="a directory, or a bucket URL (s3://...), that holds every artifact",
    )
    sv.add_argument("--host", default="0.0.0.0", help="interface to listen on (all by default)")
    sv.add_argument("--port", type=int, default=5000)
    sv.add_argument("--workers", type=int, default=4)
    sv.set_defaults(func=_server)

    tr = sub.add_parser("track", help="log run directories to MLflow, as a track job does")
    tr.add_argument("run_dirs", nargs="+", help="run directories; each gets its mlflow.json")
    tr.add_argument(
        "--experiment",
        required=True,
        help="mlflow_experiment.json (results/<name>/, rule mlflow_experiment)",
    )
    tr.set_defaults(func=_track)

    rp = sub.add_parser("report", help="summary.csv and every figure from MLflow's runs")
    rp.add_argument(
        "--from-mlflow",
        required=True,
        metavar="EXPERIMENT",
        help="experiment name (detbench-<config name>) on MLFLOW_TRACKING_URI",
    )
    rp.add_argument("--out", required=True, help="directory for summary.csv and figures/")
    rp.set_defaults(func=_report)
    return parser


def _fraction(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a fraction in [0, 1], got {text}")
    return value


def main(argv: list[str] | None = None) -> int:
    """Run one command; a :class:`DetbenchError` (or a file that cannot be opened) is printed as
    one line, without a traceback, and exits with ``EXIT_ERROR``."""
    from detbench.contract import EXIT_ERROR, DetbenchError

    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (DetbenchError, OSError) as exc:
        print(f"detbench {args.command}: {exc}", file=sys.stderr)
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
