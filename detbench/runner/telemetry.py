"""Device telemetry: a background sampler writing ``telemetry.csv`` and its summary (DESIGN §4-5).

Backends, tried in this order for ``backend="auto"``:

- ``jtop``: jetson-stats on a Jetson (``from jtop import jtop``); 3.x and 4.x+ attribute layouts.
- ``nvml``: nvidia-ml-py (``pynvml``) for the GPU, psutil for CPU / RAM / swap / CPU temperature.
- ``psutil``: CPU, RAM, swap and CPU temperature only.
- ``none``: only when all three fail; rows carry ``t_s`` and empty cells.

A backend that fails to initialise falls through to the next; the reason is kept in
``fallback_reasons``. A sensor a backend cannot read is an empty cell, never a made-up value.
Units: megabytes are MiB (2**20 bytes), temperatures degrees Celsius, power watts.

Runs on Python 3.6 (the Jetson seed stack): standard library plus optional psutil / jtop / pynvml,
each imported lazily inside its backend.
"""

import csv
import glob
import math
import os
import re
import threading
import time

from detbench.contract import TELEMETRY_COLUMNS as COLUMNS
from detbench.contract import TELEMETRY_FIELDS as FIELDS

SUMMARY_KEYS = (
    "backend",
    "interval_s",
    "samples",
    "duration_s",
    "gpu_temp_c_start",
    "gpu_temp_c_end",
    "gpu_temp_c_max",
    "gpu_temp_c_delta",
    "swap_used_mb_start",
    "swap_used_mb_end",
    "swap_used_mb_max",
    "swap_used_mb_delta",
    "ram_used_mb_max",
    "cpu_temp_c_max",
    "power_w_mean",
    "energy_j",
    "energy_j_per_image",
    "throttled",
)
BACKENDS = ("jtop", "nvml", "psutil")
# Decimal places written to the CSV (and kept in memory, so a summary of the file equals the
# sampler's own summary).
_DECIMALS = {
    "t_s": 3,
    "cpu_percent": 1,
    "ram_used_mb": 1,
    "swap_used_mb": 1,
    "gpu_util_percent": 1,
    "gpu_temp_c": 1,
    "cpu_temp_c": 1,
    "gpu_mem_used_mb": 1,
    "power_w": 3,
}
_MIB = 1024.0 * 1024.0
# NVML clock event ("throttle") reasons that are not throttling: the GPU is idle, or the user set
# application clocks. Every other reported bit counts as throttled.
_NVML_NOT_THROTTLE = 0x1 | 0x2
_NVML_REASON_NAMES = (
    (0x1, "GpuIdle"),
    (0x2, "ApplicationsClocksSetting"),
    (0x4, "SwPowerCap"),
    (0x8, "HwSlowdown"),
    (0x10, "SyncBoost"),
    (0x20, "SwThermalSlowdown"),
    (0x40, "HwThermalSlowdown"),
    (0x80, "HwPowerBrakeSlowdown"),
    (0x100, "DisplayClockSetting"),
    (0x200, "BoardLimit"),
    (0x400, "Reliability"),
)
_CPU_HWMON_NAMES = ("coretemp", "k10temp", "zenpower", "cpu_thermal", "cpu-thermal")
_CPU_HWMON_LABELS = ("package id 0", "tctl", "tdie")
_CPU_ZONE_TYPES = ("x86_pkg_temp", "cpu-thermal", "cpu_thermal", "cpu-therm", "cpu")


class BackendUnavailable(RuntimeError):
    """A telemetry backend cannot run here (module missing, no device, service down)."""


def _number(value):
    """``value`` as a finite float, or None (for None, text, NaN, inf)."""
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _describe(exc):
    text = " ".join(str(exc).split())
    return "{}: {}".format(type(exc).__name__, text) if text else type(exc).__name__


# --------------------------------------------------------------------------- host (psutil, sysfs)


def _read_first_line(path):
    with open(path) as handle:
        return handle.readline().strip()


def find_cpu_temp_file():
    """Path of a sysfs file holding the CPU temperature in millidegrees, or None.

    Looks at hwmon chips (coretemp, k10temp, ...; package/Tctl sensor preferred) and then thermal
    zones (x86_pkg_temp, Jetson ``CPU-therm``, ``cpu-thermal``).
    """
    for hwmon in sorted(glob.glob("/sys/class/hwmon/hwmon*")):
        try:
            name = _read_first_line(os.path.join(hwmon, "name")).lower()
        except (IOError, OSError):
            continue
        if name not in _CPU_HWMON_NAMES:
            continue
        inputs = sorted(glob.glob(os.path.join(hwmon, "temp*_input")))
        for path in inputs:
            try:
                label = _read_first_line(path[: -len("input")] + "label").lower()
            except (IOError, OSError):
                continue
            if label in _CPU_HWMON_LABELS:
                return path
        if inputs:
            return inputs[0]
    for zone in sorted(glob.glob("/sys/class/thermal/thermal_zone*")):
        try:
            kind = _read_first_line(os.path.join(zone, "type")).lower()
        except (IOError, OSError):
            continue
        if kind in _CPU_ZONE_TYPES and os.path.exists(os.path.join(zone, "temp")):
            return os.path.join(zone, "temp")
    return None


def _psutil_cpu_temp(psutil):
    """CPU temperature from ``psutil.sensors_temperatures()`` (used when sysfs has none)."""
    reader = getattr(psutil, "sensors_temperatures", None)
    if reader is None:
        return None
    sensors = reader() or {}
    for key in sensors:
        if key.lower() in _CPU_HWMON_NAMES or key.lower() in _CPU_ZONE_TYPES:
            entries = sensors[key]
            for entry in entries:
                if (entry.label or "").lower() in _CPU_HWMON_LABELS:
                    return _number(entry.current)
            values = [_number(entry.current) for entry in entries]
            values = [value for value in values if value is not None]
            return max(values) if values else None
    return None


class _HostReader(object):
    """CPU %, RAM, swap (psutil) and CPU temperature (sysfs, else psutil) of this host."""

    def __init__(self, require_psutil):
        try:
            import psutil
        except ImportError as exc:
            if require_psutil:
                raise BackendUnavailable("psutil: " + _describe(exc)) from exc
            psutil = None
        self.psutil = psutil
        self.cpu_temp_file = find_cpu_temp_file()
        self.cpu_temp_from_psutil = False
        if self.cpu_temp_file is None and psutil is not None:
            try:
                self.cpu_temp_from_psutil = _psutil_cpu_temp(psutil) is not None
            except Exception:  # sensors unsupported on this platform: the cell stays empty
                self.cpu_temp_from_psutil = False
        self._cpu_primed = False

    def read(self, row):
        psutil = self.psutil
        if psutil is not None:
            cpu_percent = psutil.cpu_percent(interval=None)
            # The first call only sets psutil's reference point: no interval, no reading.
            row["cpu_percent"] = cpu_percent if self._cpu_primed else None
            self._cpu_primed = True
            row["ram_used_mb"] = psutil.virtual_memory().used / _MIB
            row["swap_used_mb"] = psutil.swap_memory().used / _MIB
        row["cpu_temp_c"] = self.cpu_temp()

    def cpu_temp(self):
        if self.cpu_temp_file is not None:
            try:
                return int(_read_first_line(self.cpu_temp_file)) / 1000.0
            except (IOError, OSError, ValueError):
                return None
        if self.cpu_temp_from_psutil:
            return _psutil_cpu_temp(self.psutil)
        return None


# --------------------------------------------------------------------------- backends


class NullBackend(object):
    """No sensors at all: rows hold only ``t_s``."""

    name = "none"
    throttled = None

    def sample(self):
        return dict.fromkeys(FIELDS)

    def close(self):
        pass


class PsutilBackend(object):
    """psutil: CPU %, RAM and swap used, CPU temperature where the kernel exposes it."""

    name = "psutil"
    throttled = None

    def __init__(self):
        self.host = _HostReader(require_psutil=True)

    def sample(self):
        row = dict.fromkeys(FIELDS)
        self.host.read(row)
        return row

    def close(self):
        pass


def nvml_handle(pynvml, gpu_index):
    """NVML handle of CUDA device ``gpu_index``, honouring CUDA_VISIBLE_DEVICES remapping."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES", "").strip()
    if visible:
        entries = [entry.strip() for entry in visible.split(",") if entry.strip()]
        if gpu_index >= len(entries):
            raise BackendUnavailable(
                "gpu{} is not in CUDA_VISIBLE_DEVICES={}".format(gpu_index, visible)
            )
        entry = entries[gpu_index]
        if entry.isdigit():
            return pynvml.nvmlDeviceGetHandleByIndex(int(entry))
        return pynvml.nvmlDeviceGetHandleByUUID(entry)
    return pynvml.nvmlDeviceGetHandleByIndex(gpu_index)


def nvml_reason_names(mask):
    """Names of the NVML clock event / throttle reason bits set in ``mask``."""
    names = [name for bit, name in _NVML_REASON_NAMES if mask & bit]
    known = 0
    for bit, _ in _NVML_REASON_NAMES:
        known |= bit
    if mask & ~known:
        names.append("0x{:x}".format(mask & ~known))
    return names


class NvmlBackend(object):
    """NVML (nvidia-ml-py) for GPU utilisation, temperature, memory, power and clock reasons;
    psutil (when installed) for the host columns."""

    name = "nvml"

    def __init__(self, gpu_index=0):
        try:
            import pynvml
        except ImportError as exc:
            raise BackendUnavailable("pynvml: " + _describe(exc)) from exc
        try:
            pynvml.nvmlInit()
        except Exception as exc:  # NVMLError_LibraryNotFound, DriverNotLoaded, ...
            raise BackendUnavailable("nvmlInit: " + _describe(exc)) from exc
        self.pynvml = pynvml
        try:
            self.handle = nvml_handle(pynvml, int(gpu_index))
        except Exception as exc:
            self._shutdown()
            if isinstance(exc, BackendUnavailable):
                raise
            raise BackendUnavailable(
                "NVML device gpu{}: {}".format(gpu_index, _describe(exc))
            ) from exc
        self.host = _HostReader(require_psutil=False)
        self.reasons_seen = 0
        self._reasons_read = False
        # The "Event" name is NVML 12.x's; older drivers only have the "Throttle" one.
        self._reason_fns = [
            getattr(pynvml, name)
            for name in (
                "nvmlDeviceGetCurrentClocksEventReasons",
                "nvmlDeviceGetCurrentClocksThrottleReasons",
            )
            if hasattr(pynvml, name)
        ]
        self._temperature_sensor = getattr(pynvml, "NVML_TEMPERATURE_GPU", 0)

    @property
    def throttled(self):
        """True/False once clock reasons were read; None when NVML never reported them."""
        if not self._reasons_read:
            return None
        return bool(self.reasons_seen & ~_NVML_NOT_THROTTLE)

    def _call(self, fn, *args):
        try:
            return fn(*args)
        except Exception:  # a sensor this GPU does not support (NVMLError_NotSupported): empty
            return None

    def sample(self):
        pynvml, handle = self.pynvml, self.handle
        row = dict.fromkeys(FIELDS)
        self.host.read(row)
        util = self._call(pynvml.nvmlDeviceGetUtilizationRates, handle)
        row["gpu_util_percent"] = None if util is None else util.gpu
        row["gpu_temp_c"] = self._call(
            pynvml.nvmlDeviceGetTemperature, handle, self._temperature_sensor
        )
        memory = self._call(pynvml.nvmlDeviceGetMemoryInfo, handle)
        row["gpu_mem_used_mb"] = None if memory is None else memory.used / _MIB
        milliwatts = self._call(pynvml.nvmlDeviceGetPowerUsage, handle)
        row["power_w"] = None if milliwatts is None else milliwatts / 1000.0
        for fn in self._reason_fns:
            reasons = self._call(fn, handle)
            if reasons is not None:
                self._reason_fns = [fn]  # the one this driver answers
                self.reasons_seen |= int(reasons)
                self._reasons_read = True
                break
        return row

    def _shutdown(self):
        try:
            self.pynvml.nvmlShutdown()
        except Exception:  # already shut down: nothing left to release
            pass

    def close(self):
        self._shutdown()


def _unit_to_mib(value, unit):
    """jetson-stats 3.x memory value in ``unit`` ('k', 'M', 'G', ...) as MiB."""
    scale = {"": 1.0 / _MIB, "B": 1.0 / _MIB, "K": 1.0 / 1024, "M": 1.0, "G": 1024.0}
    factor = scale.get(str(unit or "k")[:1].upper())
    number = _number(value)
    return None if factor is None or number is None else number * factor


def _jtop_temp(stats, temperature, names):
    """Temperature in C of the first of ``names`` (case-insensitive) that is online."""
    wanted = [name.lower() for name in names]
    candidates = []
    for key, value in (temperature or {}).items():
        if str(key).lower() in wanted:
            if isinstance(value, dict):  # 4.x+: {'online': bool, 'temp': C}
                if value.get("online", True):
                    candidates.append((wanted.index(str(key).lower()), value.get("temp")))
            else:  # 3.x: plain number
                candidates.append((wanted.index(str(key).lower()), value))
    for key, value in (stats or {}).items():
        key = str(key).lower()
        if key.startswith("temp ") and key[5:] in wanted:
            candidates.append((wanted.index(key[5:]) + len(wanted), value))
    for _, value in sorted(candidates, key=lambda item: item[0]):
        number = _number(value)
        if number is not None and number > -256.0:  # jtop reports -256 for an offline sensor
            return number
    return None


def read_jtop(jetson):
    """One row of telemetry from an open jtop client (jetson-stats 3.x or 4.x+ layout)."""
    row = dict.fromkeys(FIELDS)
    stats = _safe(lambda: dict(jetson.stats)) or {}
    # Mean of the online cores ("CPU1".. in both layouts; offline cores read "OFF"). jtop's own
    # cpu["total"] is not used: 4.x+ keeps a delta, not the counters, as its reference.
    loads = [
        _number(value)
        for key, value in stats.items()
        if re.match(r"^cpu\d+$", str(key), re.IGNORECASE)
    ]
    loads = [value for value in loads if value is not None]
    row["cpu_percent"] = sum(loads) / len(loads) if loads else None
    memory = _safe(lambda: jetson.memory["RAM"] and jetson.memory)
    if memory is not None:  # 4.x+: sizes in kB
        ram, swap, unit, swap_unit = memory["RAM"], memory.get("SWAP") or {}, "k", "k"
        used_key = "used"
    else:  # 3.x: jetson.ram / jetson.swap, each with its unit
        ram = _safe(lambda: jetson.ram) or {}
        swap = _safe(lambda: jetson.swap) or {}
        unit, swap_unit, used_key = ram.get("unit", "k"), swap.get("unit", "M"), "use"
    row["ram_used_mb"] = _unit_to_mib(ram.get(used_key), unit)
    row["swap_used_mb"] = _unit_to_mib(swap.get(used_key), swap_unit)
    # "shared" is NvMapMemUsed, the RAM the GPU has mapped; jtop substitutes the total RAM when
    # the kernel lacks that counter, which is not a reading.
    shared, total = _number(ram.get("shared")), _number(ram.get("tot"))
    if shared is not None and (total is None or shared < total):
        row["gpu_mem_used_mb"] = _unit_to_mib(shared, unit)
    row["gpu_util_percent"] = _number(stats.get("GPU"))
    temperature = _safe(lambda: jetson.temperature)
    row["gpu_temp_c"] = _jtop_temp(stats, temperature, ("GPU", "gpu-therm", "gpu_thermal"))
    row["cpu_temp_c"] = _jtop_temp(stats, temperature, ("CPU", "cpu-therm", "cpu_thermal"))
    milliwatts = stats.get("Power TOT", stats.get("power cur"))
    if _number(milliwatts) is None:
        power = _safe(lambda: jetson.power)
        if isinstance(power, dict):
            milliwatts = (power.get("tot") or {}).get("power")
        elif isinstance(power, tuple) and power:
            milliwatts = (power[0] or {}).get("cur")
    milliwatts = _number(milliwatts)
    row["power_w"] = None if milliwatts is None else milliwatts / 1000.0
    return row


def _safe(getter):
    try:
        return getter()
    except Exception:  # an attribute this jetson-stats version or board lacks: cell stays empty
        return None


# The jtop service's socket (jetson-stats' JTOP_PIPE). Without it no client is built: a jtop
# client starts a thread that runs `vulkaninfo` even when the service is absent, and a process
# forked beside MXNet's running engine can deadlock it (seen here with jetson-stats installed
# on a non-Jetson host: a run hung after its first telemetry row).
JTOP_SOCKET = "/run/jtop.sock"


class JtopBackend(object):
    """jetson-stats (jtop) on a Jetson: every column from the jtop service."""

    name = "jtop"
    throttled = None  # jetson-stats exposes no throttling flag

    def __init__(self, interval_s=0.5):
        try:
            from jtop import jtop
        except ImportError as exc:
            raise BackendUnavailable("jtop: " + _describe(exc)) from exc
        if not os.path.exists(JTOP_SOCKET):
            raise BackendUnavailable(
                "jtop: no jtop service ({} absent; `sudo jtop --install-service` on a "
                "Jetson)".format(JTOP_SOCKET)
            )
        client = jtop(interval=interval_s)
        try:
            client.start()
            alive = client.ok()
        except Exception as exc:  # JtopException: service not active, no permission, versions
            raise BackendUnavailable("jtop: " + _describe(exc)) from exc
        if not alive:
            _safe(client.close)
            raise BackendUnavailable("jtop: the service sent no data")
        self.jetson = client

    def sample(self):
        if not self.jetson.ok(spin=True):
            return dict.fromkeys(FIELDS)
        return read_jtop(self.jetson)

    def close(self):
        _safe(self.jetson.close)


def open_backend(backend="auto", gpu_index=0, interval_s=0.5):
    """Open a backend; returns ``(backend, fallback_reasons)``.

    ``"auto"`` tries jtop, NVML, psutil and finally the sensorless ``none`` backend, recording why
    each skipped one was unavailable. A named backend raises BackendUnavailable when it fails.
    """
    makers = {
        "jtop": lambda: JtopBackend(interval_s),
        "nvml": lambda: NvmlBackend(gpu_index),
        "psutil": PsutilBackend,
    }
    if backend != "auto":
        if backend not in makers:
            raise ValueError(
                "backend: expected auto, jtop, nvml or psutil, got {!r}".format(backend)
            )
        return makers[backend](), []
    reasons = []
    for name in BACKENDS:
        try:
            return makers[name](), reasons
        except BackendUnavailable as exc:
            reasons.append(str(exc))
        except Exception as exc:  # an unexpected failure of one backend must not stop the run
            reasons.append("{}: {}".format(name, _describe(exc)))
    return NullBackend(), reasons


# --------------------------------------------------------------------------- CSV and summary


def _format(column, value):
    return "" if value is None else "{:.{}f}".format(value, _DECIMALS[column])


def _rounded(row):
    out = {}
    for column in COLUMNS:
        value = _number(row.get(column))
        out[column] = None if value is None else round(value, _DECIMALS[column])
    return out


def read_csv(path):
    """Rows of a ``telemetry.csv`` as dicts of float or None (empty cell)."""
    with open(path, newline="") as handle:
        reader = csv.DictReader(handle)
        if tuple(reader.fieldnames or ()) != COLUMNS:
            raise ValueError(
                "{}: expected columns {}, got {}".format(
                    path, ",".join(COLUMNS), ",".join(reader.fieldnames or ())
                )
            )
        return [
            {column: _number(row[column]) if row[column] != "" else None for column in COLUMNS}
            for row in reader
        ]


def _present(rows, column):
    return [
        (row["t_s"], row[column])
        for row in rows
        if row.get(column) is not None and row.get("t_s") is not None
    ]


def _r(value, digits=3):
    return None if value is None else round(value, digits)


def summarize(rows, backend=None, interval_s=None, image_count=None, throttled=None):
    """The flat ``telemetry`` block of result.json (docs/contracts.md) from telemetry rows.

    start/end are the first/last non-empty readings, delta = end - start. ``energy_j`` is the
    trapezoidal integral of ``power_w`` over ``t_s`` (rows with no power reading are bridged);
    ``power_w_mean`` is the time-weighted mean, energy / span (the reading itself when there is
    only one). ``energy_j_per_image`` divides by ``image_count`` when it is positive.
    """
    summary = dict.fromkeys(SUMMARY_KEYS)
    summary["backend"] = backend
    summary["interval_s"] = interval_s
    summary["samples"] = len(rows)
    times = [row["t_s"] for row in rows if row.get("t_s") is not None]
    summary["duration_s"] = _r(times[-1] - times[0]) if times else None
    for column in ("gpu_temp_c", "swap_used_mb"):
        values = [value for _, value in _present(rows, column)]
        if values:
            summary[column + "_start"] = values[0]
            summary[column + "_end"] = values[-1]
            summary[column + "_max"] = max(values)
            summary[column + "_delta"] = _r(values[-1] - values[0])
    for column in ("ram_used_mb", "cpu_temp_c"):
        values = [value for _, value in _present(rows, column)]
        summary[column + "_max"] = max(values) if values else None
    power = _present(rows, "power_w")
    if len(power) >= 2:
        energy = 0.0
        for index in range(1, len(power)):
            (t0, p0), (t1, p1) = power[index - 1], power[index]
            energy += (t1 - t0) * (p0 + p1) / 2.0
        span = power[-1][0] - power[0][0]
        summary["energy_j"] = _r(energy)
        summary["power_w_mean"] = (
            _r(energy / span) if span > 0 else _r(sum(value for _, value in power) / len(power))
        )
    elif power:
        summary["power_w_mean"] = power[0][1]
    if summary["energy_j"] is not None and image_count:
        summary["energy_j_per_image"] = _r(summary["energy_j"] / float(image_count), 6)
    summary["throttled"] = throttled
    return summary


# --------------------------------------------------------------------------- the sampler


class TelemetrySampler(object):
    """Background sampler writing ``telemetry.csv`` (one flushed row per sample).

    The first sample is taken in ``start()`` at ``t_s`` = 0, then every ``interval_s`` on a
    schedule anchored at the start (monotonic clock, so intervals do not drift; a slot missed by a
    slow read is skipped, not bunched up), and one final sample in ``stop()``. Usable as a context
    manager. ``backend`` is ``"auto"``, ``"jtop"``, ``"nvml"`` or ``"psutil"``.
    """

    def __init__(self, csv_path, interval_s=0.5, backend="auto", gpu_index=0):
        interval_s = float(interval_s)
        if not interval_s > 0:
            raise ValueError("interval_s: expected > 0, got {!r}".format(interval_s))
        self.csv_path = csv_path
        self.interval_s = interval_s
        self.backend = backend
        self.gpu_index = int(gpu_index)
        self.backend_name = None
        self.fallback_reasons = []
        self.errors = []
        self.rows = []
        self._backend = None
        self._handle = None
        self._writer = None
        self._thread = None
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._t0 = None
        self._started = False
        self._stopped = False

    def start(self):
        """Open the backend and the CSV, take the t=0 sample, start the thread. Returns self."""
        if self._started:
            raise RuntimeError("TelemetrySampler.start(): already started")
        self._started = True
        self._backend, self.fallback_reasons = open_backend(
            self.backend, self.gpu_index, self.interval_s
        )
        self.backend_name = self._backend.name
        try:
            directory = os.path.dirname(os.path.abspath(self.csv_path))
            if not os.path.isdir(directory):
                os.makedirs(directory)
            self._handle = open(self.csv_path, "w", newline="")
        except Exception:
            self._backend.close()
            raise
        self._writer = csv.writer(self._handle, lineterminator="\n")
        self._writer.writerow(COLUMNS)
        self._handle.flush()
        self._t0 = time.monotonic()
        self._sample()
        self._thread = threading.Thread(target=self._loop, name="detbench-telemetry")
        self._thread.daemon = True
        self._thread.start()
        return self

    def _loop(self):
        tick = 1
        while True:
            delay = self._t0 + tick * self.interval_s - time.monotonic()
            if self._stop.wait(max(0.0, delay)):
                return
            self._sample()
            elapsed = time.monotonic() - self._t0
            tick = max(tick + 1, int(elapsed / self.interval_s) + 1)

    def _sample(self):
        t_s = time.monotonic() - self._t0
        try:
            row = self._backend.sample()
        except Exception as exc:  # a failed read is recorded and leaves an empty row
            if len(self.errors) < 20:
                self.errors.append("t={:.3f}s {}".format(t_s, _describe(exc)))
            row = {}
        row = dict(row)
        row["t_s"] = t_s
        row = _rounded(row)
        with self._lock:
            self.rows.append(row)
            self._writer.writerow([_format(column, row[column]) for column in COLUMNS])
            self._handle.flush()

    def stop(self):
        """Stop the thread, take the final sample, close backend and file. Idempotent."""
        if not self._started or self._stopped:
            return
        self._stopped = True
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        try:
            self._sample()
        finally:
            self._handle.close()
            try:
                self._backend.close()
            except Exception as exc:  # closing a sensor library must not fail the run
                self.errors.append("close: " + _describe(exc))

    @property
    def throttled(self):
        return None if self._backend is None else self._backend.throttled

    @property
    def throttle_reasons(self):
        """NVML reason names seen during the run (empty for other backends)."""
        mask = getattr(self._backend, "reasons_seen", 0)
        return nvml_reason_names(mask) if mask else []

    def summary(self, image_count=None):
        """The flat telemetry summary of docs/contracts.md for the rows taken so far."""
        with self._lock:
            rows = list(self.rows)
        return summarize(
            rows,
            backend=self.backend_name,
            interval_s=self.interval_s,
            image_count=image_count,
            throttled=self.throttled,
        )

    def __enter__(self):
        return self.start()

    def __exit__(self, exc_type, exc_value, traceback):
        self.stop()
        return False
