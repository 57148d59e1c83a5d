"""Host facts for result.json's ``host`` block (docs/contracts.md): CPU, GPU and Jetson provenance.

Every source is optional (psutil, pynvml, jtop, /proc, /sys, lscpu, nvpmodel); a missing one gives
None, never an exception. Runs on Python 3.6 (the Jetson seed stack).
"""

import glob
import os
import platform
import re
import socket
import subprocess

from detbench.runner.telemetry import nvml_handle

# (implementer, part) from /proc/cpuinfo on ARM, for kernels whose cpuinfo has no model name.
_ARM_PARTS = {
    (0x41, 0xD03): "ARM Cortex-A53",
    (0x41, 0xD07): "ARM Cortex-A57",
    (0x41, 0xD08): "ARM Cortex-A72",
    (0x41, 0xD0B): "ARM Cortex-A76",
    (0x41, 0xD42): "ARM Cortex-A78AE",
    (0x41, 0xD4F): "ARM Neoverse-V2",
    (0x4E, 0x003): "NVIDIA Denver 2",
    (0x4E, 0x004): "NVIDIA Carmel",
}
_GENERIC_MODEL = re.compile(r"^(ARMv\d|ARM\b)", re.IGNORECASE)
_L4T_RE = re.compile(r"R(\d+)\s*\(release\),\s*REVISION:\s*([0-9.]+)")


def _read(path):
    """Text of ``path`` (NULs stripped), or None."""
    try:
        with open(path, "rb") as handle:
            text = handle.read().decode("utf-8", "replace").replace("\x00", "").strip()
    except (IOError, OSError):
        return None
    return text or None


def _run(command, timeout=5.0):
    """Stdout of ``command``, or None when it is missing, fails or times out."""
    env = dict(os.environ, LC_ALL="C")
    try:
        completed = subprocess.run(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=env,
            universal_newlines=True,
            timeout=timeout,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return completed.stdout if completed.returncode == 0 else None


def _text(value):
    if value is None:
        return None
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    value = str(value).strip()
    return value or None


def _cpuinfo_fields(text):
    fields = {}
    for line in (text or "").splitlines():
        key, sep, value = line.partition(":")
        if sep:
            fields.setdefault(key.strip().lower(), []).append(value.strip())
    return fields


def _arm_model(fields):
    names = []
    implementers, parts = fields.get("cpu implementer", []), fields.get("cpu part", [])
    for index in range(min(len(implementers), len(parts))):
        try:
            name = _ARM_PARTS.get((int(implementers[index], 16), int(parts[index], 16)))
        except ValueError:
            name = None
        if name and name not in names:
            names.append(name)
    return " + ".join(names) or None


def cpu_model():
    """CPU model: /proc/cpuinfo's model name, the ARM part table, lscpu, the device-tree model
    (a Jetson board name), then ``platform.processor()``; None when nothing says."""
    fields = _cpuinfo_fields(_read("/proc/cpuinfo"))
    model = (fields.get("model name") or [None])[0]
    if model and not _GENERIC_MODEL.match(model):
        return model
    arm = _arm_model(fields)
    if arm:
        return arm
    lscpu = _cpuinfo_fields(_run(["lscpu"])).get("model name", [None])[0]
    if lscpu and lscpu != "-":
        return lscpu
    return model or _read("/proc/device-tree/model") or _text(platform.processor())


def cpu_cores():
    """(physical, logical) core counts: psutil, else sysfs topology / os.cpu_count()."""
    logical = os.cpu_count()
    physical = None
    try:
        import psutil

        logical = psutil.cpu_count(logical=True) or logical
        physical = psutil.cpu_count(logical=False)
    except ImportError:
        pass
    if not physical:
        cores = set()
        for topology in glob.glob("/sys/devices/system/cpu/cpu[0-9]*/topology"):
            package = _read(os.path.join(topology, "physical_package_id"))
            core = _read(os.path.join(topology, "core_id"))
            if core is not None:
                cores.add((package, core))
        physical = len(cores) or logical
    return physical, logical


def gpu_facts(gpu_index=0):
    """(name, driver version) of CUDA device ``gpu_index`` from NVML, or (None, None)."""
    try:
        import pynvml

        pynvml.nvmlInit()
    except Exception:  # no nvidia-ml-py, no driver, or a Jetson without NVML
        return None, None
    try:
        name = driver = None
        try:
            driver = _text(pynvml.nvmlSystemGetDriverVersion())
        except Exception:  # NVMLError: the name may still be readable
            pass
        try:
            name = _text(pynvml.nvmlDeviceGetName(nvml_handle(pynvml, int(gpu_index))))
        except Exception:  # no such device index: name stays unknown
            pass
        return name, driver
    finally:
        try:
            pynvml.nvmlShutdown()
        except Exception:  # nothing to release
            pass


def _jetson_from_jtop():
    """{board, jetpack, l4t, nvpmodel} from jetson-stats (3.x and 4.x+ layouts), or None."""
    try:
        from jtop import jtop

        client = jtop()
        client.start()
    except Exception:  # jtop missing, or its service not running (not a Jetson)
        return None
    try:
        board = client.board
        hardware = board.get("hardware") or {}
        info = board.get("info") or {}  # jetson-stats 3.x
        nvpmodel = client.nvpmodel
        facts = {
            "board": _text(
                hardware.get("Model")
                or info.get("machine")
                or hardware.get("Module")
                or hardware.get("BOARD")
            ),
            "jetpack": _text(hardware.get("Jetpack") or info.get("jetpack")),
            "l4t": _text(hardware.get("L4T") or info.get("L4T")),
            "nvpmodel": None if nvpmodel is None else _text(getattr(nvpmodel, "name", nvpmodel)),
        }
    except Exception:  # an attribute this jetson-stats version lacks: use the files instead
        facts = None
    finally:
        try:
            client.close()
        except Exception:  # closing the client must not lose the facts
            pass
    return facts


def _jetson_from_files():
    """{board, jetpack, l4t, nvpmodel} from L4T's own files and tools, or None if not a Jetson."""
    release = _read("/etc/nv_tegra_release")
    model = _read("/proc/device-tree/model")
    if release is None and not (model and "jetson" in model.lower()):
        return None
    l4t = None
    match = _L4T_RE.search(release or "")
    if match:
        l4t = "{}.{}".format(match.group(1), match.group(2))
    jetpack = _text(_run(["dpkg-query", "--showformat=${Version}", "--show", "nvidia-jetpack"]))
    nvpmodel = None
    query = _run(["nvpmodel", "-q"])
    match = re.search(r"NV Power Mode:\s*(.+)", query or "")
    if match:
        nvpmodel = match.group(1).strip()
    return {"board": model, "jetpack": jetpack, "l4t": l4t, "nvpmodel": nvpmodel}


def jetson_facts():
    """Jetson board, JetPack, L4T and nvpmodel mode (jtop first, then files), or None."""
    from_jtop = _jetson_from_jtop()
    from_files = _jetson_from_files()
    if from_jtop is None and from_files is None:
        return None
    facts = {}
    for key in ("board", "jetpack", "l4t", "nvpmodel"):
        facts[key] = (from_jtop or {}).get(key) or (from_files or {}).get(key)
    return facts


def _safely(fn, default=None):
    try:
        return fn()
    except Exception:  # host facts never fail a run
        return default


def host_facts(gpu_index=0):
    """The ``host`` block of result.json. Never raises; unknown facts are None."""
    physical, logical = _safely(cpu_cores, (None, os.cpu_count()))
    gpu_name, gpu_driver = _safely(lambda: gpu_facts(gpu_index), (None, None))
    return {
        "hostname": _safely(socket.gethostname) or _text(platform.node()),
        "platform": _safely(platform.platform),
        "machine": _text(platform.machine()),
        "cpu_model": _safely(cpu_model),
        "cpu_cores_physical": physical,
        "cpu_cores_logical": logical,
        "gpu_name": gpu_name,
        "gpu_driver": gpu_driver,
        "jetson": _safely(jetson_facts),
    }
