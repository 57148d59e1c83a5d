"""``python -m detbench.runner run SPEC`` | ``init-weights --model M --seed S --out F``.

OMP_NUM_THREADS is set here, before anything imports mxnet.
"""

import argparse
import sys


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m detbench.runner", description=__doc__)
    sub = parser.add_subparsers(dest="command")
    run = sub.add_parser("run", help="execute one run spec (spec.json in its run directory)")
    run.add_argument("spec")
    init = sub.add_parser("init-weights", help="save seeded untrained weights of a model")
    init.add_argument("--model", required=True)
    init.add_argument("--seed", type=int, default=0)
    init.add_argument("--out", required=True)
    init.add_argument("--threads", type=int, default=None)
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2

    from detbench.runner import environment

    if args.command == "run":
        import json

        with open(args.spec) as handle:
            environment.configure_threads(json.load(handle).get("threads"))
        from detbench.runner.run import run_spec

        run_spec(args.spec)
    else:
        environment.configure_threads(args.threads)
        from detbench.runner.run import init_weights

        init_weights(args.model, args.seed, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
