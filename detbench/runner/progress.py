"""Progress of a run's measured passes: images done, rate and time left, at a steady pace.

On a terminal (and with tqdm importable) a tqdm bar; otherwise plain lines on stderr, flushed as
they are written, so a job's log and an SSH stream (DESIGN §9) show them as they happen::

    detbench progress: voc yolo3_mobilenet1.0_voc: 120/4952 images (2.4%), 7.9 img/s, 10m12s left

Reporting costs one clock read per batch; lines are written between batches, after the batch's
timer has stopped.
"""

import sys
import time

PREFIX = "detbench progress: "


def _duration(seconds):
    seconds = int(round(seconds))
    if seconds >= 3600:
        return "{}h{:02d}m".format(seconds // 3600, seconds % 3600 // 60)
    if seconds >= 60:
        return "{}m{:02d}s".format(seconds // 60, seconds % 60)
    return "{}s".format(seconds)


def progress_line(label, done, total, elapsed_s):
    """One plain progress line (without the trailing newline)."""
    rate = done / elapsed_s if elapsed_s > 0 else 0.0
    left = (total - done) / rate if rate > 0 else None
    return "{}{}: {}/{} images ({:.1f}%), {:.2f} img/s, {} left".format(
        PREFIX,
        label,
        done,
        total,
        100.0 * done / total if total else 100.0,
        rate,
        _duration(left) if left is not None else "?",
    )


class Progress(object):
    """Counts images over one or more passes of ``total`` images each.

    ``interval_s``: seconds between plain lines (the first and the last line are always written).
    ``stream``: where lines go (default ``sys.stderr``); ``bar``: ``None`` = a tqdm bar when the
    stream is a terminal and tqdm is importable.
    """

    def __init__(self, label, total, interval_s=10.0, stream=None, bar=None):
        self.label = label
        self.total = int(total)
        self.interval_s = float(interval_s)
        self.stream = stream if stream is not None else sys.stderr
        self.done = 0
        self._start = None
        self._last = None
        self._bar = None
        if bar is None:
            bar = bool(getattr(self.stream, "isatty", lambda: False)())
        if bar:
            try:
                import tqdm

                self._bar = tqdm.tqdm(
                    total=self.total, desc=label, unit="img", file=self.stream, mininterval=1.0
                )
            except ImportError:  # tqdm is optional on the device
                self._bar = None

    def start(self):
        self.done = 0
        self._start = self._last = time.monotonic()
        if self._bar is None:
            self._write(0.0)
        return self

    def update(self, images):
        self.done += int(images)
        if self._bar is not None:
            self._bar.update(int(images))
            return
        now = time.monotonic()
        if now - self._last >= self.interval_s or self.done >= self.total:
            self._last = now
            self._write(now - self._start)

    def close(self):
        if self._bar is not None:
            self._bar.close()

    def _write(self, elapsed_s):
        if self.stream is None:
            return
        try:
            self.stream.write(progress_line(self.label, self.done, self.total, elapsed_s) + "\n")
            self.stream.flush()
        except (IOError, OSError):  # a closed log or a cut SSH stream never fails the run
            self.stream = None
