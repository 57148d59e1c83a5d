"""A team's tracking server (DESIGN §9): one ``mlflow server`` whose backend store is PostgreSQL
and whose artifacts live in one directory or bucket; every track job logs to it through
``MLFLOW_TRACKING_URI``. ``detbench server`` (``make server PG=postgresql://...``) starts it.

Also :class:`TempPostgres`, a throwaway PostgreSQL cluster (``initdb`` in a temporary directory,
a free loopback port) for the tests and benchmarks that need a real server.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

from detbench.contract import DetbenchError
from detbench.track import NO_TELEMETRY, ui_url

SCHEMES = ("postgresql", "postgresql+psycopg2")
# PostgreSQL connections the server's workers may hold together, below PostgreSQL's default
# max_connections (100). Each worker answers up to 40 requests at once (its thread pool); with
# SQLAlchemy's default pool (5 + 10 overflow) a burst of track jobs waits for a connection and
# fails after 30 s ("QueuePool limit ... reached"), so each worker gets its share of these.
DB_CONNECTIONS = 80
WORKER_THREADS = 40
PG_BINDIRS = ("/usr/lib/postgresql/*/bin",)


class ServerError(DetbenchError, RuntimeError):
    """The tracking server or its database cannot be started; the message says which and why."""


def server_command(
    store_uri: str, artifacts: str, host: str = "127.0.0.1", port: int = 5000, workers: int = 4
) -> list[str]:
    """``mlflow server`` on the PostgreSQL ``store_uri`` with artifacts served from ``artifacts``
    (a directory, made absolute, or a bucket URL such as ``s3://team-bucket/detbench``)."""
    scheme = urlsplit(store_uri).scheme
    if scheme not in SCHEMES:
        raise ServerError(
            f"expected a PostgreSQL URL (postgresql://user:password@host:5432/db), got "
            f"{store_uri!r}: the team server keeps its runs in PostgreSQL"
        )
    if "://" not in artifacts:
        artifacts = str(Path(artifacts).resolve())
    return [
        sys.executable, "-m", "mlflow", "server",
        "--backend-store-uri", store_uri,
        "--serve-artifacts", "--artifacts-destination", artifacts,
        "--host", host, "--port", str(port), "--workers", str(workers),
    ]  # fmt: skip


def wait_healthy(uri: str, process: subprocess.Popen | None = None, timeout_s: float = 120) -> None:
    """Wait until the tracking server at ``uri`` answers ``/health``."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with urllib.request.urlopen(f"{uri}/health", timeout=2):
                return
        except OSError:
            if process is not None and process.poll() is not None:
                raise ServerError(f"mlflow server for {uri} exited at start-up") from None
            if time.monotonic() > deadline:
                raise ServerError(
                    f"mlflow server at {uri} did not answer in {timeout_s:g} s"
                ) from None
            time.sleep(0.3)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def pg_bindir() -> Path | None:
    """The directory of PostgreSQL's server binaries (``initdb``, ``pg_ctl``), newest first."""
    for pattern in PG_BINDIRS:
        dirs = sorted(Path("/").glob(pattern.lstrip("/")), key=lambda p: int(p.parent.name))
        for bindir in reversed(dirs):
            if (bindir / "initdb").exists() and (bindir / "createdb").exists():
                return bindir
    found = shutil.which("initdb")
    return Path(found).resolve().parent if found else None


class TempPostgres:
    """A PostgreSQL cluster of its own in a temporary directory, on a free loopback port, with
    trust authentication for its one user; run as the ``postgres`` OS user when this process is
    root (PostgreSQL refuses root). Use as a context manager, or :meth:`start` / :meth:`stop`."""

    def __init__(self, database: str = "mlflow", port: int | None = None):
        self.database = database
        self.port = port or free_port()
        self.bindir = pg_bindir()
        if self.bindir is None:
            raise ServerError("PostgreSQL's initdb not found (apt-get install postgresql)")
        self.root = Path(tempfile.mkdtemp(prefix="detbench-pg-"))
        self.data = self.root / "data"
        self.user = "detbench"
        self._as = []
        if os.geteuid() == 0:
            owner = pwd.getpwnam("postgres")
            os.chown(self.root, owner.pw_uid, owner.pw_gid)
            self._as = ["runuser", "-u", "postgres", "--"]

    @property
    def url(self) -> str:
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{self.database}"

    def _run(self, *command: str) -> None:
        done = subprocess.run([*self._as, *command], capture_output=True, text=True)
        if done.returncode != 0:
            log = self.root / "postgres.log"
            tail = log.read_text()[-2000:] if log.exists() else ""
            raise ServerError(f"{' '.join(command)} failed:\n{done.stdout}{done.stderr}{tail}")

    def start(self) -> TempPostgres:
        try:
            self._start()
        except BaseException:
            self.remove()
            raise
        return self

    def _start(self) -> None:
        if not self.data.exists():
            self._run(
                str(self.bindir / "initdb"), "-D", str(self.data), "-U", self.user,
                "--auth=trust", "-E", "UTF8", "--no-sync",
            )  # fmt: skip
        options = f"-h 127.0.0.1 -p {self.port} -k {self.root} -c fsync=off"
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-o", options, "-w",
                  "-l", str(self.root / "postgres.log"), "start")  # fmt: skip
        exists = subprocess.run(
            [*self._as, str(self.bindir / "psql"), "-h", "127.0.0.1", "-p", str(self.port),
             "-U", self.user, "-d", "postgres", "-tAc",
             f"SELECT 1 FROM pg_database WHERE datname = '{self.database}'"],
            capture_output=True, text=True,
        )  # fmt: skip
        if exists.stdout.strip() != "1":
            self._run(str(self.bindir / "createdb"), "-h", "127.0.0.1", "-p", str(self.port),
                      "-U", self.user, self.database)  # fmt: skip

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> TempPostgres:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.remove()


class MlflowServer:
    """``detbench server`` (:func:`serve`) as a child process on a free loopback port;
    :meth:`stop` kills it (a server that dies), :meth:`start` brings it back on the same port."""

    def __init__(self, store_uri: str, artifacts: Path | str, workers: int = 2, log=None):
        self.port = free_port()
        self.uri = f"http://127.0.0.1:{self.port}"
        server_command(store_uri, str(artifacts))  # checks the URL before anything starts
        self.command = [
            sys.executable, "-m", "detbench.cli", "server", "--backend-store-uri", store_uri,
            "--artifacts-destination", str(artifacts), "--host", "127.0.0.1",
            "--port", str(self.port), "--workers", str(workers),
        ]  # fmt: skip
        self.log = log
        self.process: subprocess.Popen | None = None

    def start(self) -> MlflowServer:
        out = open(self.log, "ab") if self.log else subprocess.DEVNULL  # noqa: SIM115
        self.process = subprocess.Popen(
            self.command, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
        wait_healthy(self.uri, self.process)
        return self

    def stop(self, kill: bool = False) -> None:
        """Stop the server and its workers (SIGKILL with ``kill``: a server that dies)."""
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, 9 if kill else 15)
        self.process.wait(timeout=60)

    def __enter__(self) -> MlflowServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def pool_env(workers: int) -> dict[str, str]:
    """MLflow's SQLAlchemy pool settings for ``workers`` workers: :data:`DB_CONNECTIONS` shared
    among them (at most a worker's thread count each); the environment's own settings win."""
    share = max(2, min(WORKER_THREADS, DB_CONNECTIONS // max(workers, 1)))
    pool = {"MLFLOW_SQLALCHEMYSTORE_POOL_SIZE": str(max(1, share // 4)),
            "MLFLOW_SQLALCHEMYSTORE_MAX_OVERFLOW": str(share - max(1, share // 4))}  # fmt: skip
    return {**pool, **{k: os.environ[k] for k in pool if k in os.environ}}


def serve(store_uri: str, artifacts: str, host: str, port: int, workers: int) -> int:
    """Run the team's tracking server in the foreground until it is stopped."""
    command = server_command(store_uri, artifacts, host, port, workers)
    shown = urlsplit(store_uri)._replace(netloc=urlsplit(store_uri).netloc.split("@")[-1])
    server = f"http://{socket.getfqdn() if host == '0.0.0.0' else host}:{port}"
    print(
        f"MLflow tracking server on {shown.geturl()}, artifacts in {command[8]}: set "
        f"MLFLOW_TRACKING_URI={server} for every track job; runs tables at {ui_url(server)}",
        flush=True,
    )
    env = {**NO_TELEMETRY, **os.environ, **pool_env(workers)}
    return subprocess.call(command, env=env)
