"""Fixtures shared by test modules: Debian's Chromium, for the pages the tests open; and SIGINT
given back its default for the Ctrl-C tests."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess

import pytest

# A test run started in the background by a shell without job control (`make test &` in a
# script, nohup) inherits SIGINT ignored (POSIX), and every runner the Ctrl-C tests start would
# inherit that too and run to the end. A handled signal is reset to its default across exec.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture(scope="session")
def chromium() -> str:
    """Debian's ``chromium``, installed with apt-get when missing (set-up, never a skip)."""
    found = shutil.which("chromium")
    if found:
        return found
    sudo = [] if os.geteuid() == 0 else ["sudo", "-n"]
    assert shutil.which("apt-get") and shutil.which(sudo[0] if sudo else "apt-get"), (
        "chromium is missing and cannot be installed: that needs apt-get (Debian) run as root "
        "or through password-less sudo"
    )
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    # No recommends: the browser and one font family, without upgrading the host's libraries.
    install = [*sudo, "apt-get", "install", "-y", "--no-install-recommends", "chromium",
               "fonts-liberation"]  # fmt: skip
    done = subprocess.run(install, env=env, capture_output=True, text=True)
    if done.returncode != 0:  # stale or empty package lists: refresh them once
        subprocess.run([*sudo, "apt-get", "update"], env=env, capture_output=True, text=True)
        done = subprocess.run(install, env=env, capture_output=True, text=True)
    found = shutil.which("chromium")
    assert found, f"apt-get could not install chromium:\n{done.stdout[-2000:]}{done.stderr}"
    return found
