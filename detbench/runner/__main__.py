"""``python -m detbench.runner run [--lock FILE] SPEC``,
``python -m detbench.runner init-weights --model M --seed S --out F``, or
``python -m detbench.runner export-onnx --model M --weights ENTRY.json --out M.onnx --record R``
(an export failure is recorded in R, exit 0; see :mod:`detbench.runner.onnx_export`).

OMP_NUM_THREADS is set here, before anything imports mxnet. ``--lock``: hold an exclusive lock on
FILE for the run (a device over SSH runs one job at a time); if another run holds it, exit with
``EXIT_BUSY`` at once.
"""

import argparse
import sys

EXIT_BUSY = 75  # EX_TEMPFAIL: the device is busy with another run


def hold_lock(path):
    """An open file holding an exclusive lock on ``path``, or None if another process holds it."""
    import fcntl
    import os

    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        os.makedirs(directory)
    handle = open(path, "a")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except (IOError, OSError):
        handle.close()
        return None
    return handle


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m detbench.runner", description=__doc__)
    sub = parser.add_subparsers(dest="command")
    run = sub.add_parser("run", help="execute one run spec (spec.json in its run directory)")
    run.add_argument("spec")
    run.add_argument("--lock", default=None, help="hold an exclusive lock on this file")
    init = sub.add_parser("init-weights", help="save seeded untrained weights of a model")
    init.add_argument("--model", required=True)
    init.add_argument("--seed", type=int, default=0)
    init.add_argument("--out", required=True)
    init.add_argument("--threads", type=int, default=None)
    export = sub.add_parser("export-onnx", help="export a model to ONNX (opset 13) + its record")
    export.add_argument("--model", required=True)
    export.add_argument("--weights", required=True, help="JSON file: the spec's weights entry")
    export.add_argument("--out", required=True, help="the .onnx file (empty if export fails)")
    export.add_argument("--record", required=True, help="the export record (JSON)")
    export.add_argument("--threads", type=int, default=None)
    export.add_argument("--static-batch", action="store_true", help="fix the batch axis at 1")
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2

    from detbench.runner import environment

    if args.command == "run":
        import json

        lock = hold_lock(args.lock) if args.lock else None
        if args.lock and lock is None:
            sys.stderr.write("detbench runner: device busy: another run holds " + args.lock + "\n")
            return EXIT_BUSY

        with open(args.spec) as handle:
            environment.configure_threads(json.load(handle).get("threads"))
        from detbench.runner.run import run_spec

        run_spec(args.spec)
    elif args.command == "export-onnx":
        import json

        environment.configure_threads(args.threads)
        from detbench.runner.onnx_export import export

        with open(args.weights) as handle:
            weights = json.load(handle)
        record = export(args.model, weights, args.out, args.record, not args.static_batch)
        sys.stderr.write(
            "detbench runner: export-onnx {} -> {}{}\n".format(
                args.model, record["status"], ": " + record["error"] if record["error"] else ""
            )
        )
    else:
        environment.configure_threads(args.threads)
        from detbench.runner.run import init_weights

        init_weights(args.model, args.seed, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
