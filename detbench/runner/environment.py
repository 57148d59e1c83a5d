"""Process set-up that must happen before mxnet is imported, and version/knob provenance."""

import os
import sys

# Environment variables that change MXNet's speed; recorded with every run.
SPEED_KNOBS = (
    "OMP_NUM_THREADS",
    "MXNET_CPU_WORKER_NTHREADS",
    "MXNET_GPU_WORKER_NTHREADS",
    "MXNET_ENGINE_TYPE",
    "MXNET_CUDNN_AUTOTUNE_DEFAULT",
    "MXNET_SUBGRAPH_BACKEND",
    "MXNET_USE_OPERATOR_TUNING",
    "KMP_AFFINITY",
    "CUDA_VISIBLE_DEVICES",
)


def physical_cores():
    try:
        import psutil

        count = psutil.cpu_count(logical=False)
    except ImportError:
        count = None
    return count or os.cpu_count() or 1


def configure_threads(requested=None):
    """Set OMP_NUM_THREADS before mxnet loads (unset, MXNet here runs one thread: 1.68x slower).

    Precedence: the spec's ``threads``, then a value already in the environment, then the
    physical core count. Returns the value in force.
    """
    if requested:
        os.environ["OMP_NUM_THREADS"] = str(int(requested))
    elif not os.environ.get("OMP_NUM_THREADS"):
        os.environ["OMP_NUM_THREADS"] = str(physical_cores())
    return os.environ["OMP_NUM_THREADS"]


def speed_knobs():
    return {name: os.environ.get(name) for name in SPEED_KNOBS}


def _distribution_version(name):
    # gluoncv.__version__ says 0.11.0 for the 0.10.5.post0 wheel: read package metadata instead.
    try:
        from importlib import metadata
    except ImportError:  # Python < 3.8 (the seed stack's 3.6)
        metadata = None
    try:
        if metadata is not None:
            return metadata.version(name)
        import pkg_resources

        return pkg_resources.get_distribution(name).version
    except Exception:  # not installed under this distribution name (e.g. mxnet-cu110)
        return None


def package_versions():
    import platform

    versions = {"python": platform.python_version()}
    for name in ("mxnet", "gluoncv", "numpy"):
        versions[name] = _distribution_version(name)
        if versions[name] is None and name in sys.modules:
            versions[name] = getattr(sys.modules[name], "__version__", None)
    return versions
