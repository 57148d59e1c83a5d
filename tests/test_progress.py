"""The runner's progress lines and its optional cool-down (detbench.runner.progress, .cooldown)."""

from __future__ import annotations

import io

from detbench.runner import cooldown
from detbench.runner.progress import Progress, progress_line


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds


def test_progress_line_says_images_rate_and_time_left():
    line = progress_line("voc m nano hybrid", 120, 4952, 15.0)
    assert line == (
        "detbench progress: voc m nano hybrid: 120/4952 images (2.4%), 8.00 img/s, 10m04s left"
    )


def test_progress_writes_first_last_and_paced_lines(monkeypatch):
    clock = Clock()
    monkeypatch.setattr("detbench.runner.progress.time.monotonic", clock)
    out = io.StringIO()
    progress = Progress("speed m cpu hybrid", 10, interval_s=5, stream=out, bar=False).start()
    for _ in range(10):
        clock.sleep(1.0)
        progress.update(1)
    done = [line.split(": ")[2].split(" ")[0] for line in out.getvalue().splitlines()]
    assert done == ["0/10", "5/10", "10/10"]


def test_cooldown_without_sensor_waits_max_wait_s_and_says_so(monkeypatch):
    clock = Clock()
    monkeypatch.setattr(cooldown, "_temperature", lambda backend: None)
    entry = cooldown.cool_down({"below_c": 50, "max_wait_s": 3}, clock=clock, sleep=clock.sleep)
    assert entry["waited_s"] == 3 and entry["reason"].startswith("no temperature sensor")


def test_cooldown_stops_once_below_the_limit(monkeypatch):
    clock = Clock()
    readings = iter([70.0, 60.0, 49.0, 40.0])
    monkeypatch.setattr(cooldown, "_temperature", lambda backend: next(readings))
    entry = cooldown.cool_down({"below_c": 50, "max_wait_s": 60}, clock=clock, sleep=clock.sleep)
    assert entry == {"below_c": 50, "max_wait_s": 60.0, "waited_s": 2.0, "temp_c_start": 70.0,
                     "temp_c_end": 49.0, "reason": "below 50 C"}  # fmt: skip


def test_no_cooldown_configured_is_no_entry():
    assert cooldown.cool_down({"below_c": None, "max_wait_s": 0}) is None
