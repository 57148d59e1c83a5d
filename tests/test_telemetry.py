"""Telemetry sampler and host facts (detbench.runner.telemetry, detbench.runner.hostinfo).

jtop and pynvml are replaced by fakes that follow their documented APIs: jetson-stats 4.x+
(``jtop/jtop.py`` docstrings of stats, memory, gpu, power, temperature, board, nvpmodel; the 3.x
layout for the JetPack 4 seed stack) and nvidia-ml-py's ``pynvml.py``.
"""

import json
import os
import subprocess
import sys
import threading
import time
import types

import pytest

from detbench.runner import hostinfo, telemetry

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PYTHON36 = os.environ.get("DETBENCH_PYTHON36", "/root/.pyenv/versions/3.6.15/bin/python3.6")
HEADER = (
    "t_s,cpu_percent,ram_used_mb,swap_used_mb,gpu_util_percent,gpu_temp_c,cpu_temp_c,"
    "gpu_mem_used_mb,power_w"
)
HOST_KEYS = {
    "hostname",
    "platform",
    "machine",
    "cpu_model",
    "cpu_cores_physical",
    "cpu_cores_logical",
    "gpu_name",
    "gpu_driver",
    "jetson",
}


# --------------------------------------------------------------------------- fakes


class _Series:
    """Values handed out one per call; the last one repeats."""

    def __init__(self, values):
        self.values, self.calls = list(values), 0

    def next(self):
        value = self.values[min(self.calls, len(self.values) - 1)]
        self.calls += 1
        if isinstance(value, Exception):
            raise value
        return value


def fake_pynvml(
    temps=(40,),
    power_mw=(50000,),
    reasons=(0x1,),
    event_reasons=True,
    init_error=False,
    name=b"NVIDIA H100 80GB HBM3",
    devices=4,
):
    """A ``pynvml`` module: nvmlInit/Shutdown, handles by index/UUID, utilisation, temperature,
    memory, power (mW) and clock event/throttle reasons, raising NVMLError subclasses."""
    mod = types.ModuleType("pynvml")

    class NVMLError(Exception):
        pass

    class NVMLError_NotSupported(NVMLError):  # noqa: N801 (pynvml's own name)
        pass

    class NVMLError_LibraryNotFound(NVMLError):  # noqa: N801
        pass

    mod.NVMLError = NVMLError
    mod.NVMLError_NotSupported = NVMLError_NotSupported
    mod.NVML_TEMPERATURE_GPU = 0
    mod.state = {"init": 0, "shutdown": 0, "handles": []}
    temp_series, power_series, reason_series = (_Series(temps), _Series(power_mw), _Series(reasons))

    def nvmlInit():
        if init_error:
            raise NVMLError_LibraryNotFound("NVML Shared Library Not Found")
        mod.state["init"] += 1

    def nvmlShutdown():
        mod.state["shutdown"] += 1

    def nvmlDeviceGetHandleByIndex(index):
        if index >= devices:
            raise NVMLError("Invalid Argument")
        mod.state["handles"].append(index)
        return ("handle", index)

    def nvmlDeviceGetHandleByUUID(uuid):
        mod.state["handles"].append(uuid)
        return ("handle", uuid)

    def nvmlDeviceGetUtilizationRates(handle):
        return types.SimpleNamespace(gpu=87, memory=30)

    def nvmlDeviceGetTemperature(handle, sensor):
        assert sensor == mod.NVML_TEMPERATURE_GPU
        return temp_series.next()

    def nvmlDeviceGetMemoryInfo(handle):
        return types.SimpleNamespace(total=80 * 2**30, free=70 * 2**30, used=10 * 2**30)

    def nvmlDeviceGetPowerUsage(handle):
        return power_series.next()

    def nvmlDeviceGetCurrentClocksThrottleReasons(handle):
        return reason_series.next()

    mod.nvmlInit = nvmlInit
    mod.nvmlShutdown = nvmlShutdown
    mod.nvmlDeviceGetHandleByIndex = nvmlDeviceGetHandleByIndex
    mod.nvmlDeviceGetHandleByUUID = nvmlDeviceGetHandleByUUID
    mod.nvmlDeviceGetUtilizationRates = nvmlDeviceGetUtilizationRates
    mod.nvmlDeviceGetTemperature = nvmlDeviceGetTemperature
    mod.nvmlDeviceGetMemoryInfo = nvmlDeviceGetMemoryInfo
    mod.nvmlDeviceGetPowerUsage = nvmlDeviceGetPowerUsage
    mod.nvmlDeviceGetCurrentClocksThrottleReasons = nvmlDeviceGetCurrentClocksThrottleReasons
    if event_reasons:
        mod.nvmlDeviceGetCurrentClocksEventReasons = nvmlDeviceGetCurrentClocksThrottleReasons
    mod.nvmlDeviceGetName = lambda handle: name
    mod.nvmlSystemGetDriverVersion = lambda: b"550.54.15"
    mod.NotSupported = NVMLError_NotSupported
    return mod


class _NvpModel:
    def __init__(self, name):
        self.name = name


class FakeJtop4:
    """jetson-stats 4.x+ client (``from jtop import jtop``), Jetson Nano readings."""

    fail = None
    alive = True
    memory_shared_kb = 300 * 1024

    def __init__(self, interval=1.0):
        self.interval_user = interval
        self.tick = 0
        self.closed = False

    def start(self):
        if self.fail:
            raise RuntimeError(self.fail)

    def ok(self, spin=False):
        if spin:
            self.tick += 1
        return self.alive

    def close(self):
        self.closed = True

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    @property
    def stats(self):
        return {
            "time": None,
            "uptime": None,
            "CPU1": 10,
            "CPU2": "OFF",
            "CPU3": 30,
            "CPU4": 20,
            "RAM": 0.5,
            "SWAP": 0.1,
            "GPU": 55.0,
            "Temp AO": 44.0,
            "Temp CPU": 40.5,
            "Temp GPU": 38.0 + self.tick,
            "Power POM_5V_IN": 5123,
            "Power TOT": 5123,
            "jetson_clocks": "OFF",
            "nvp model": "MAXN",
        }

    @property
    def memory(self):
        return {
            "RAM": {
                "tot": 4000000,
                "used": 2048000,
                "free": 1000,
                "buffers": 10,
                "cached": 20,
                "shared": self.memory_shared_kb,
                "lfb": 4,
            },
            "SWAP": {"tot": 2000000, "used": 102400, "cached": 0, "table": {}},
        }

    @property
    def gpu(self):
        return {
            "gpu": {
                "type": "integrated",
                "status": {"load": 55.0},
                "freq": {"governor": "nvhost_podgov", "cur": 921600},
            }
        }

    @property
    def power(self):
        return {
            "rail": {"POM_5V_IN": {"online": True, "power": 5123, "avg": 5000}},
            "tot": {"power": 5123, "avg": 5000},
        }

    @property
    def temperature(self):
        return {
            "AO": {"online": True, "temp": 44.0},
            "CPU": {"online": True, "temp": 40.5},
            "GPU": {"online": True, "temp": 38.0 + self.tick},
            "PMIC": {"online": False, "temp": -256},
        }

    @property
    def board(self):
        return {
            "platform": {"Machine": "aarch64"},
            "hardware": {
                "Model": "NVIDIA Jetson Nano Developer Kit",
                "Module": "P3448",
                "L4T": "32.4.3",
                "Jetpack": "4.4",
            },
            "libraries": {"CUDA": "10.2"},
        }

    @property
    def nvpmodel(self):
        return _NvpModel("MAXN")


class FakeJtop3(FakeJtop4):
    """jetson-stats 3.x client: ram/swap with units, power as (total, rails), float temps,
    board with an ``info`` section, and no ``memory`` attribute."""

    @property
    def memory(self):
        raise AttributeError("memory")

    @property
    def stats(self):
        return {
            "CPU1": 12,
            "CPU2": 18,
            "CPU3": "OFF",
            "GPU": 60,
            "RAM": 2000000,
            "SWAP": 50,
            "Temp CPU": 41.0,
            "Temp GPU": 39.5,
            "Temp PLL": 39.0,
            "power cur": 4200,
            "power avg": 4000,
        }

    @property
    def ram(self):
        return {"use": 2000000, "shared": 204800, "tot": 4000000, "unit": "k"}

    @property
    def swap(self):
        return {"use": 50, "tot": 2000, "unit": "M", "cached": {"size": 0, "unit": "k"}}

    @property
    def gpu(self):
        return {"val": 60, "frq": 921600000}

    @property
    def power(self):
        return {"cur": 4200, "avg": 4000}, {"POM_5V_GPU": {"cur": 1000, "avg": 900}}

    @property
    def temperature(self):
        return {"CPU": 41.0, "GPU": 39.5, "PLL": 39.0}

    @property
    def board(self):
        return {
            "info": {
                "machine": "NVIDIA Jetson Nano (Developer Kit Version)",
                "jetpack": "4.4",
                "L4T": "32.4.3",
            },
            "hardware": {"TYPE": "Nano", "BOARD": "P3449-0000"},
        }


def jtop_module(cls):
    mod = types.ModuleType("jtop")
    mod.jtop = cls
    return mod


@pytest.fixture(autouse=True)
def jtop_service(monkeypatch, tmp_path):
    """The jtop service's socket exists (the fakes stand for a Jetson with jtop running)."""
    socket = tmp_path / "jtop.sock"
    socket.touch()
    monkeypatch.setattr(telemetry, "JTOP_SOCKET", str(socket))


def test_without_the_jtop_service_no_jtop_client_is_built(monkeypatch, tmp_path):
    """No socket, no client: building one starts jetson-stats' vulkaninfo thread, which can
    deadlock beside MXNet (a hung run on a host with jetson-stats but no service)."""
    built = []

    class Recorded(FakeJtop4):
        def __init__(self, *args, **kwargs):
            built.append(True)
            super().__init__(*args, **kwargs)

    monkeypatch.setitem(sys.modules, "jtop", jtop_module(Recorded))
    monkeypatch.setattr(telemetry, "JTOP_SOCKET", str(tmp_path / "absent.sock"))
    with pytest.raises(telemetry.BackendUnavailable, match="absent.sock absent"):
        telemetry.JtopBackend(0.1)
    assert built == []


@pytest.fixture
def no_sensor_libs(monkeypatch):
    """jtop and pynvml are not importable (both happen to be installed in the dev venv)."""
    monkeypatch.setitem(sys.modules, "jtop", None)
    monkeypatch.setitem(sys.modules, "pynvml", None)


def _wait_rows(sampler, count, timeout=3.0):
    deadline = time.monotonic() + timeout
    while len(sampler.rows) < count and time.monotonic() < deadline:
        time.sleep(0.005)


def _csv_lines(path):
    with open(path) as handle:
        return handle.read().splitlines()


# --------------------------------------------------------------------------- backend choice


def test_auto_with_jtop_ok_picks_jtop(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "jtop", jtop_module(FakeJtop4))
    monkeypatch.setitem(sys.modules, "pynvml", fake_pynvml())
    with telemetry.TelemetrySampler(str(tmp_path / "t.csv"), interval_s=0.02) as sampler:
        _wait_rows(sampler, 2)
    assert sampler.backend_name == "jtop"
    assert sampler.fallback_reasons == []
    assert sampler._backend.jetson.closed
    rows = telemetry.read_csv(str(tmp_path / "t.csv"))
    assert rows[0]["power_w"] == 5.123
    assert rows[0]["gpu_util_percent"] == 55.0


def test_auto_with_jtop_failing_falls_to_nvml(monkeypatch, tmp_path):
    class Down(FakeJtop4):
        fail = "The jtop.service is not active. Please run:\nsudo jtop --install-service"

    nvml = fake_pynvml()
    monkeypatch.setitem(sys.modules, "jtop", jtop_module(Down))
    monkeypatch.setitem(sys.modules, "pynvml", nvml)
    sampler = telemetry.TelemetrySampler(str(tmp_path / "t.csv"), interval_s=0.02).start()
    sampler.stop()
    assert sampler.backend_name == "nvml"
    assert sampler.fallback_reasons == [
        "jtop: RuntimeError: The jtop.service is not active. Please run: sudo jtop "
        "--install-service"
    ]
    assert nvml.state["init"] == 1 and nvml.state["shutdown"] == 1


def test_auto_with_jtop_sending_no_data_falls_to_nvml(monkeypatch, tmp_path):
    class Silent(FakeJtop4):
        alive = False

    monkeypatch.setitem(sys.modules, "jtop", jtop_module(Silent))
    monkeypatch.setitem(sys.modules, "pynvml", fake_pynvml())
    backend, reasons = telemetry.open_backend("auto")
    backend.close()
    assert backend.name == "nvml"
    assert reasons == ["jtop: the service sent no data"]


def test_auto_without_jtop_and_nvml_falls_to_psutil(no_sensor_libs, tmp_path):
    sampler = telemetry.TelemetrySampler(str(tmp_path / "t.csv"), interval_s=0.02).start()
    sampler.stop()
    assert sampler.backend_name == "psutil"
    assert [reason.split(":")[0] for reason in sampler.fallback_reasons] == ["jtop", "pynvml"]
    assert all(
        "ImportError" in reason or "ModuleNotFoundError" in reason
        for reason in sampler.fallback_reasons
    )


def test_auto_with_nvml_library_missing_falls_to_psutil(monkeypatch):
    monkeypatch.setitem(sys.modules, "jtop", None)
    monkeypatch.setitem(sys.modules, "pynvml", fake_pynvml(init_error=True))
    backend, reasons = telemetry.open_backend("auto")
    assert backend.name == "psutil"
    assert reasons[1] == "nvmlInit: NVMLError_LibraryNotFound: NVML Shared Library Not Found"


def test_auto_without_any_library_records_empty_rows(no_sensor_libs, monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "psutil", None)
    path = str(tmp_path / "t.csv")
    with telemetry.TelemetrySampler(path, interval_s=0.02) as sampler:
        pass
    assert sampler.backend_name == "none"
    assert len(sampler.fallback_reasons) == 3
    lines = _csv_lines(path)
    assert lines[0] == HEADER and all(line.endswith(",,,,,,,,") for line in lines[1:])


def test_forced_backend_that_is_missing_raises(no_sensor_libs):
    with pytest.raises(telemetry.BackendUnavailable, match="pynvml"):
        telemetry.open_backend("nvml")
    with pytest.raises(ValueError, match="expected auto, jtop, nvml or psutil, got 'cuda'"):
        telemetry.open_backend("cuda")


def test_forced_psutil_skips_present_gpu_libraries(monkeypatch):
    monkeypatch.setitem(sys.modules, "jtop", jtop_module(FakeJtop4))
    monkeypatch.setitem(sys.modules, "pynvml", fake_pynvml())
    backend, reasons = telemetry.open_backend("psutil")
    assert (backend.name, reasons) == ("psutil", [])


# --------------------------------------------------------------------------- readings


def test_columns_are_exactly_the_contract(no_sensor_libs, tmp_path):
    path = str(tmp_path / "deep" / "run" / "telemetry.csv")
    with telemetry.TelemetrySampler(path, interval_s=0.02):
        pass
    assert _csv_lines(path)[0] == HEADER
    assert ",".join(telemetry.COLUMNS) == HEADER


def test_psutil_backend_leaves_gpu_and_power_cells_empty(no_sensor_libs, tmp_path):
    path = str(tmp_path / "t.csv")
    with telemetry.TelemetrySampler(path, interval_s=0.02, backend="psutil") as sampler:
        _wait_rows(sampler, 2)
    for row in telemetry.read_csv(path):
        assert row["gpu_util_percent"] is None and row["gpu_temp_c"] is None
        assert row["gpu_mem_used_mb"] is None and row["power_w"] is None
    summary = sampler.summary(image_count=10)
    assert summary["gpu_temp_c_start"] is None and summary["energy_j"] is None
    assert summary["power_w_mean"] is None and summary["throttled"] is None


def test_real_psutil_backend_samples_ram_and_cpu(no_sensor_libs, tmp_path):
    path = str(tmp_path / "t.csv")
    sampler = telemetry.TelemetrySampler(path, interval_s=0.05, backend="psutil").start()
    time.sleep(0.3)
    sampler.stop()
    rows = telemetry.read_csv(path)
    assert 4 <= len(rows) <= 9
    assert rows[0]["t_s"] == 0.0 and rows[0]["cpu_percent"] is None  # no interval measured yet
    assert all(row["ram_used_mb"] > 0 and row["swap_used_mb"] >= 0 for row in rows)
    assert all(0.0 <= row["cpu_percent"] <= 100.0 for row in rows[1:])
    times = [row["t_s"] for row in rows]
    assert times == sorted(times)
    for tick, t_s in enumerate(times[1:-1], start=1):  # scheduled on the start time, never early
        assert t_s >= tick * 0.05 - 0.001


def test_nvml_backend_reads_gpu_and_host_columns(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "pynvml", fake_pynvml(temps=(41,), power_mw=(123456,)))
    path = str(tmp_path / "t.csv")
    with telemetry.TelemetrySampler(path, interval_s=0.02, backend="nvml"):
        pass
    first = _csv_lines(path)[1].split(",")
    assert first[0] == "0.000"
    assert first[4:6] == ["87.0", "41.0"]
    assert first[7:] == ["10240.0", "123.456"]
    assert float(first[2]) > 0  # RAM from psutil


def test_nvml_unsupported_sensor_stays_empty(monkeypatch, tmp_path):
    nvml = fake_pynvml()
    nvml.nvmlDeviceGetPowerUsage = lambda handle: (_ for _ in ()).throw(nvml.NotSupported())
    monkeypatch.setitem(sys.modules, "pynvml", nvml)
    path = str(tmp_path / "t.csv")
    with telemetry.TelemetrySampler(path, interval_s=0.02, backend="nvml") as sampler:
        _wait_rows(sampler, 2)
    assert all(row["power_w"] is None for row in telemetry.read_csv(path))
    assert all(row["gpu_temp_c"] == 40.0 for row in telemetry.read_csv(path))
    assert sampler.summary()["energy_j"] is None


def test_nvml_follows_cuda_visible_devices(monkeypatch):
    nvml = fake_pynvml()
    monkeypatch.setitem(sys.modules, "pynvml", nvml)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,3")
    telemetry.NvmlBackend(gpu_index=1).close()
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "GPU-8f2c")
    telemetry.NvmlBackend(gpu_index=0).close()
    assert nvml.state["handles"] == [3, "GPU-8f2c"]
    with pytest.raises(telemetry.BackendUnavailable, match="not in CUDA_VISIBLE_DEVICES"):
        telemetry.NvmlBackend(gpu_index=1)


def test_jtop4_reading_maps_units_and_skips_offline_sensors():
    row = telemetry.read_jtop(FakeJtop4())
    assert row == {
        "cpu_percent": 20.0,
        "ram_used_mb": 2000.0,
        "swap_used_mb": 100.0,
        "gpu_util_percent": 55.0,
        "gpu_temp_c": 38.0,
        "cpu_temp_c": 40.5,
        "gpu_mem_used_mb": 300.0,
        "power_w": 5.123,
    }


def test_jtop4_shared_memory_equal_to_total_is_not_a_reading():
    client = FakeJtop4()
    client.memory_shared_kb = 4000000  # jtop's stand-in when NvMapMemUsed is missing
    assert telemetry.read_jtop(client)["gpu_mem_used_mb"] is None


def test_jtop3_reading_maps_units():
    row = telemetry.read_jtop(FakeJtop3())
    assert row == {
        "cpu_percent": 15.0,
        "ram_used_mb": 2000000 / 1024.0,
        "swap_used_mb": 50.0,
        "gpu_util_percent": 60.0,
        "gpu_temp_c": 39.5,
        "cpu_temp_c": 41.0,
        "gpu_mem_used_mb": 200.0,
        "power_w": 4.2,
    }


# --------------------------------------------------------------------------- summary


def _write_csv(path, lines):
    with open(path, "w") as handle:
        handle.write("\n".join([HEADER] + lines) + "\n")


def test_summary_math_on_a_crafted_csv(tmp_path):
    path = str(tmp_path / "telemetry.csv")
    _write_csv(
        path,
        [
            "0.000,,1000.0,100.0,,,50.0,,10.000",
            "1.000,5.0,1200.0,150.0,90.0,40.0,55.5,,20.000",
            "2.000,5.0,1100.0,120.0,90.0,42.0,,,",
            "4.000,5.0,1150.0,130.0,90.0,41.0,52.0,,30.000",
        ],
    )
    summary = telemetry.summarize(
        telemetry.read_csv(path), backend="nvml", interval_s=1.0, image_count=9, throttled=False
    )
    assert tuple(summary) == telemetry.SUMMARY_KEYS
    assert summary == {
        "backend": "nvml",
        "interval_s": 1.0,
        "samples": 4,
        "duration_s": 4.0,
        "gpu_temp_c_start": 40.0,
        "gpu_temp_c_end": 41.0,
        "gpu_temp_c_max": 42.0,
        "gpu_temp_c_delta": 1.0,
        "swap_used_mb_start": 100.0,
        "swap_used_mb_end": 130.0,
        "swap_used_mb_max": 150.0,
        "swap_used_mb_delta": 30.0,
        "ram_used_mb_max": 1200.0,
        "cpu_temp_c_max": 55.5,
        # trapezoids 0-1 s: 15 J, 1-4 s (the empty reading bridged): 75 J
        "power_w_mean": 22.5,
        "energy_j": 90.0,
        "energy_j_per_image": 10.0,
        "throttled": False,
    }


def test_summary_keys_match_docs_contract():
    with open(os.path.join(REPO, "docs", "contracts.md")) as handle:
        text = handle.read()
    block = text[text.index('"telemetry": {') : text.index('"started_at"')]
    for key in telemetry.SUMMARY_KEYS:
        assert f'"{key}"' in block


def test_summary_of_one_power_reading_has_mean_but_no_energy():
    rows = [dict.fromkeys(telemetry.COLUMNS), dict.fromkeys(telemetry.COLUMNS)]
    rows[0].update(t_s=0.0, power_w=7.0)
    rows[1].update(t_s=0.5)
    summary = telemetry.summarize(rows, image_count=3)
    assert (summary["power_w_mean"], summary["energy_j"], summary["energy_j_per_image"]) == (
        7.0,
        None,
        None,
    )


def test_read_csv_rejects_other_columns(tmp_path):
    path = str(tmp_path / "t.csv")
    with open(path, "w") as handle:
        handle.write("t_s,cpu\n0,1\n")
    with pytest.raises(ValueError, match="expected columns t_s,cpu_percent"):
        telemetry.read_csv(path)


def test_sampler_summary_from_fake_nvml_series(monkeypatch, tmp_path):
    monkeypatch.setitem(
        sys.modules,
        "pynvml",
        fake_pynvml(temps=(40, 45, 52, 50), power_mw=(100000, 200000, 300000, 300000)),
    )
    path = str(tmp_path / "t.csv")
    with telemetry.TelemetrySampler(path, interval_s=0.02, backend="nvml") as sampler:
        _wait_rows(sampler, 4)
    summary = sampler.summary(image_count=5)
    assert summary == telemetry.summarize(
        telemetry.read_csv(path),
        backend="nvml",
        interval_s=0.02,
        image_count=5,
        throttled=summary["throttled"],
    )
    assert (
        summary["gpu_temp_c_start"],
        summary["gpu_temp_c_end"],
        summary["gpu_temp_c_max"],
        summary["gpu_temp_c_delta"],
    ) == (40.0, 50.0, 52.0, 10.0)
    rows = sampler.rows
    expected = sum(
        (b["t_s"] - a["t_s"]) * (a["power_w"] + b["power_w"]) / 2
        for a, b in zip(rows, rows[1:], strict=False)
    )
    assert summary["energy_j"] == pytest.approx(expected, abs=1e-3)
    assert summary["energy_j_per_image"] == pytest.approx(summary["energy_j"] / 5, abs=1e-6)
    assert 100.0 < summary["power_w_mean"] <= 300.0
    assert summary["samples"] == len(rows) and summary["backend"] == "nvml"


@pytest.mark.parametrize(
    "reasons, event_api, expected, names",
    [
        ((0x1, 0x4, 0x1), True, True, ["GpuIdle", "SwPowerCap"]),
        ((0x1, 0x2), True, False, ["GpuIdle", "ApplicationsClocksSetting"]),
        ((0x0, 0x40), False, True, ["HwThermalSlowdown"]),
    ],
)
def test_throttled_flag_from_nvml_clock_reasons(
    monkeypatch, tmp_path, reasons, event_api, expected, names
):
    nvml = fake_pynvml(reasons=reasons, event_reasons=event_api)
    monkeypatch.setitem(sys.modules, "pynvml", nvml)
    with telemetry.TelemetrySampler(str(tmp_path / "t.csv"), 0.02, "nvml") as sampler:
        _wait_rows(sampler, len(reasons))
    assert sampler.summary()["throttled"] is expected
    assert sampler.throttle_reasons == names


def test_throttled_is_none_when_nvml_cannot_tell(monkeypatch, tmp_path):
    nvml = fake_pynvml()
    nvml.nvmlDeviceGetCurrentClocksThrottleReasons = lambda handle: (_ for _ in ()).throw(
        nvml.NotSupported()
    )
    nvml.nvmlDeviceGetCurrentClocksEventReasons = nvml.nvmlDeviceGetCurrentClocksThrottleReasons
    monkeypatch.setitem(sys.modules, "pynvml", nvml)
    with telemetry.TelemetrySampler(str(tmp_path / "t.csv"), 0.02, "nvml") as sampler:
        pass
    assert sampler.summary()["throttled"] is None


# --------------------------------------------------------------------------- lifecycle


def test_stop_takes_a_final_sample_and_ends_the_thread(no_sensor_libs, tmp_path):
    path = str(tmp_path / "t.csv")
    sampler = telemetry.TelemetrySampler(path, interval_s=0.05, backend="psutil").start()
    _wait_rows(sampler, 2)
    assert len(_csv_lines(path)) >= 3  # rows are on disk while running (flushed per row)
    time.sleep(0.02)
    before = len(sampler.rows)
    last_scheduled = sampler.rows[-1]["t_s"]
    sampler.stop()
    assert len(sampler.rows) == before + 1
    assert sampler.rows[-1]["t_s"] > last_scheduled
    assert not sampler._thread.is_alive()
    assert not any(thread.name == "detbench-telemetry" for thread in threading.enumerate())
    sampler.stop()  # idempotent: the runner may stop twice
    assert len(telemetry.read_csv(path)) == before + 1
    with pytest.raises(RuntimeError, match="already started"):
        sampler.start()


def test_failed_read_leaves_an_empty_row_and_is_recorded(no_sensor_libs, tmp_path):
    sampler = telemetry.TelemetrySampler(str(tmp_path / "t.csv"), 0.02, "psutil").start()
    sampler._backend.sample = lambda: 1 / 0
    _wait_rows(sampler, 3)
    sampler.stop()
    assert sampler.errors[0].endswith("ZeroDivisionError: division by zero")
    assert sampler.rows[-1]["ram_used_mb"] is None


def test_interval_must_be_positive(tmp_path):
    with pytest.raises(ValueError, match="expected > 0, got 0.0"):
        telemetry.TelemetrySampler(str(tmp_path / "t.csv"), interval_s=0)


# --------------------------------------------------------------------------- host facts


def test_host_facts_without_gpu_libraries(no_sensor_libs, monkeypatch):
    monkeypatch.setattr(hostinfo, "_jetson_from_files", lambda: None)
    facts = hostinfo.host_facts()
    assert set(facts) == HOST_KEYS
    assert facts["gpu_name"] is None and facts["gpu_driver"] is None and facts["jetson"] is None
    assert facts["cpu_cores_logical"] >= facts["cpu_cores_physical"] >= 1
    assert facts["hostname"] and facts["machine"] and facts["cpu_model"]


def test_host_facts_reads_nvml_name_and_driver(monkeypatch):
    nvml = fake_pynvml()
    monkeypatch.setitem(sys.modules, "pynvml", nvml)
    monkeypatch.setitem(sys.modules, "jtop", None)
    facts = hostinfo.host_facts(gpu_index=2)
    assert (facts["gpu_name"], facts["gpu_driver"]) == ("NVIDIA H100 80GB HBM3", "550.54.15")
    assert nvml.state["handles"] == [2] and nvml.state["shutdown"] == 1


@pytest.mark.parametrize(
    "client, board",
    [
        (FakeJtop4, "NVIDIA Jetson Nano Developer Kit"),
        (FakeJtop3, "NVIDIA Jetson Nano (Developer Kit Version)"),
    ],
)
def test_host_facts_reads_jetson_board_from_jtop(monkeypatch, client, board):
    monkeypatch.setitem(sys.modules, "jtop", jtop_module(client))
    monkeypatch.setitem(sys.modules, "pynvml", None)
    monkeypatch.setattr(hostinfo, "_jetson_from_files", lambda: None)
    assert hostinfo.host_facts()["jetson"] == {
        "board": board,
        "jetpack": "4.4",
        "l4t": "32.4.3",
        "nvpmodel": "MAXN",
    }


def test_host_facts_reads_l4t_files_without_jtop(no_sensor_libs, monkeypatch):
    files = {
        "/etc/nv_tegra_release": "# R32 (release), REVISION: 4.3, GCID: 21589087, BOARD: "
        "t210ref, EABI: aarch64, DATE: Fri Jun 26 04:38:25 UTC 2020",
        "/proc/device-tree/model": "NVIDIA Jetson Nano Developer Kit",
    }
    monkeypatch.setattr(hostinfo, "_read", files.get)
    monkeypatch.setattr(
        hostinfo,
        "_run",
        lambda command, timeout=5.0: (
            "NV Power Mode: MAXN\n0\n" if command[0] == "nvpmodel" else None
        ),
    )
    assert hostinfo.jetson_facts() == {
        "board": "NVIDIA Jetson Nano Developer Kit",
        "jetpack": None,
        "l4t": "32.4.3",
        "nvpmodel": "MAXN",
    }


def test_cpu_model_on_arm_without_model_name(monkeypatch):
    block = "processor\t: {}\nBogoMIPS\t: 38.40\nCPU implementer\t: 0x41\nCPU part\t: 0xd07\n\n"
    cpuinfo = "".join(block.replace("{}", str(index)) for index in range(4))
    monkeypatch.setattr(hostinfo, "_read", {"/proc/cpuinfo": cpuinfo}.get)
    assert hostinfo.cpu_model() == "ARM Cortex-A57"


def test_host_facts_never_raises(monkeypatch):
    def broken(*args, **kwargs):
        raise OSError("no /proc here")

    for name in ("cpu_model", "cpu_cores", "gpu_facts", "jetson_facts"):
        monkeypatch.setattr(hostinfo, name, broken)
    facts = hostinfo.host_facts()
    assert set(facts) == HOST_KEYS and facts["cpu_model"] is None and facts["jetson"] is None


# --------------------------------------------------------------------------- Python 3.6


def test_modules_import_and_run_on_python36(tmp_path):
    script = (
        "import json, sys, time\n"
        "from detbench.runner import hostinfo, telemetry\n"
        "sampler = telemetry.TelemetrySampler(sys.argv[1], interval_s=0.02).start()\n"
        "time.sleep(0.1)\n"
        "sampler.stop()\n"
        "print(json.dumps({'summary': sampler.summary(image_count=2),\n"
        "                  'host': hostinfo.host_facts()}))\n"
    )
    env = dict(os.environ, PYTHONPATH=REPO)
    completed = subprocess.run(
        [PYTHON36, "-c", script, str(tmp_path / "t.csv")],
        env=env,
        cwd=str(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert completed.returncode == 0, completed.stderr
    out = json.loads(completed.stdout)
    assert tuple(out["summary"]) == telemetry.SUMMARY_KEYS and out["summary"]["samples"] >= 3
    assert set(out["host"]) == HOST_KEYS
    assert _csv_lines(str(tmp_path / "t.csv"))[0] == HEADER
