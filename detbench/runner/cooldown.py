"""Optional cool-down before a timed run: wait until the device is cooler than ``below_c`` or
``max_wait_s`` seconds have passed, whichever comes first, and say how long it waited.

The temperature is the hottest of the GPU and CPU sensors the telemetry backend reads (jtop,
NVML, psutil). Without a sensor (or without ``below_c``) it waits the full ``max_wait_s``.
"""

import time


def _temperature(backend):
    row = backend.sample()
    values = [row.get(k) for k in ("gpu_temp_c", "cpu_temp_c")]
    values = [float(v) for v in values if v is not None]
    return max(values) if values else None


def cool_down(settings, gpu_index=0, poll_s=1.0, clock=time.monotonic, sleep=time.sleep):
    """Wait as ``settings`` ({below_c, max_wait_s}) say; returns the ``cooldown`` entry of
    result.json, or None when no cool-down is configured."""
    settings = settings or {}
    below_c, max_wait_s = settings.get("below_c"), float(settings.get("max_wait_s") or 0)
    if below_c is None and max_wait_s <= 0:
        return None
    from detbench.runner import telemetry

    backend, _ = telemetry.open_backend("auto", gpu_index, poll_s)
    start = clock()
    try:
        first = temp = _temperature(backend)
        reason = "max_wait_s reached"
        while True:
            if below_c is not None and temp is not None and temp < float(below_c):
                reason = "below {} C".format(below_c)
                break
            if clock() - start >= max_wait_s:
                if below_c is not None and temp is None:
                    reason = "no temperature sensor; waited max_wait_s"
                break
            sleep(min(poll_s, max(0.0, max_wait_s - (clock() - start))) or poll_s)
            temp = _temperature(backend)
    finally:
        backend.close()
    return {
        "below_c": below_c,
        "max_wait_s": max_wait_s,
        "waited_s": round(clock() - start, 3),
        "temp_c_start": first,
        "temp_c_end": temp,
        "reason": reason,
    }
