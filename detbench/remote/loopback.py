"""A throwaway OpenSSH server on loopback: what the tests and ``benchmarks/ssh_vs_local.py`` use as
a device over SSH.

Debian's ``openssh-server`` is installed with apt-get when missing (as root, or through
password-less sudo). The server runs in the foreground (``sshd -D -e``) on a free port of
127.0.0.1 with its own host key, one authorized client key, key login only, and the internal
SFTP server; :meth:`LoopbackSSHD.device` gives the ``devices`` entry that reaches it.
"""

from __future__ import annotations

import getpass
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

SSHD = "/usr/sbin/sshd"


def ensure_sshd() -> str:
    """The path of sshd, installing Debian's openssh-server with apt-get when it is missing."""
    if Path(SSHD).exists():
        return SSHD
    sudo = [] if os.geteuid() == 0 else ["sudo", "-n"]
    if not shutil.which("apt-get") or (sudo and not shutil.which("sudo")):
        raise RuntimeError(
            "sshd is missing and cannot be installed: that needs apt-get (Debian) run as root or "
            "through password-less sudo"
        )
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = [*sudo, "apt-get", "install", "-y", "--no-install-recommends", "openssh-server"]
    done = subprocess.run(install, env=env, capture_output=True, text=True)
    if done.returncode != 0:  # stale or empty package lists: refresh them once
        subprocess.run([*sudo, "apt-get", "update"], env=env, capture_output=True, text=True)
        done = subprocess.run(install, env=env, capture_output=True, text=True)
    if not Path(SSHD).exists():
        raise RuntimeError(f"apt-get could not install openssh-server:\n{done.stderr[-2000:]}")
    return SSHD


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def keygen(path: Path) -> str:
    """A new ed25519 key pair at ``path`` (+ ``.pub``); returns the public key line."""
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)
    return path.with_suffix(".pub").read_text().strip()


class LoopbackSSHD:
    """``with LoopbackSSHD(folder) as server:`` an sshd on 127.0.0.1:``server.port``."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self.user = getpass.getuser()
        self.port = free_port()
        self.process: subprocess.Popen | None = None
        self.identity_file = self.folder / "id_ed25519"
        self.known_hosts = self.folder / "known_hosts"

    def start(self) -> LoopbackSSHD:
        sshd = ensure_sshd()
        self.folder.mkdir(parents=True, exist_ok=True)
        host_key = self.folder / "host_ed25519"
        host_public = keygen(host_key)
        (self.folder / "authorized_keys").write_text(keygen(self.identity_file) + "\n")
        self.known_hosts.write_text(f"[127.0.0.1]:{self.port} {host_public}\n")
        config = self.folder / "sshd_config"
        config.write_text(
            f"Port {self.port}\nListenAddress 127.0.0.1\nHostKey {host_key}\n"
            f"AuthorizedKeysFile {self.folder / 'authorized_keys'}\nStrictModes no\n"
            f"PidFile {self.folder / 'sshd.pid'}\nPermitRootLogin prohibit-password\n"
            "PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\n"
            "Subsystem sftp internal-sftp\nMaxStartups 50\nMaxSessions 50\nLogLevel INFO\n"
        )
        if os.geteuid() == 0:
            Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # privilege separation folder
        log = open(self.folder / "sshd.log", "w")
        self.process = subprocess.Popen(
            [sshd, "-D", "-e", "-f", str(config)], stdout=log, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"sshd exited: {(self.folder / 'sshd.log').read_text()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return self
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"sshd did not listen on port {self.port}")

    def device(self, name: str, python: str | Path, **extra) -> dict:
        """A ``devices`` entry for this server."""
        entry = {
            "name": name,
            "host": f"{self.user}@127.0.0.1",
            "port": self.port,
            "python": str(python),
            "identity_file": str(self.identity_file),
            "known_hosts": str(self.known_hosts),
        }
        return {**entry, **extra}

    def session_pids(self) -> list[int]:
        """The sshd processes serving connections (children of the listener)."""
        done = subprocess.run(
            ["pgrep", "-P", str(self.process.pid)], capture_output=True, text=True
        )
        return [int(pid) for pid in done.stdout.split()]

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def __enter__(self) -> LoopbackSSHD:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
