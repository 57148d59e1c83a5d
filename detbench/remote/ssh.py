"""One run on a device over SSH (DESIGN §9): send, run, bring back.

For each run: connect (asyncssh, host key checked against ``known_hosts``, keepalive); start the
agent (:mod:`detbench.remote.agent`) under the device's Python, measure the link's round-trip
time and the device's clock offset; send what the device's cache lacks (the runner archive, and
the weights and images by content hash); lay out the run's tree of links and its spec; run
``python -m detbench.runner run`` there with stdout and stderr streamed into the job's log as they
come; bring back ``result.json``, ``telemetry.csv`` and ``detections.npz`` through a staging
folder, renamed into the run directory only once all arrived (``result.json`` last).

The spec keeps its relative paths: the run's tree on the device mirrors them (``weights/...``,
``devkit/VOC2007/JPEGImages/...``) with links into the cache, so the runner reads the same spec
it would read locally. Only ``devkit`` (which may be absolute locally) becomes ``devkit``, and
``context`` (the MXNet device) and ``link`` (the measurements) are added.

A lost connection is retried (``ssh.retries``), after killing what the lost attempt left running;
Ctrl-C, SIGTERM and the deadline kill the remote runner. Nothing reaches the run directory unless
the run's files all came back.
"""

from __future__ import annotations

import asyncio
import datetime
import hashlib
import json
import os
import shlex
import shutil
import signal
import threading
import time
from pathlib import Path

import asyncssh

from detbench.remote.agent import SOURCE as AGENT_SOURCE
from detbench.remote.archive import runner_archive

RUN_FILES = ("telemetry.csv", "detections.npz", "result.json")  # result.json last
EXIT_BUSY = 75  # detbench.runner.__main__.EXIT_BUSY
STAGING = ".ssh-staging"


class DeviceError(RuntimeError):
    """A device over SSH could not run the job; the message names the device and the cause."""


class ConnectionLostError(DeviceError):
    """The connection dropped while the job was using it (retried)."""


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="microseconds")


def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def split_host(host: str) -> tuple[str | None, str]:
    user, _, address = host.rpartition("@")
    return user or None, address


def run_inputs(spec: dict) -> dict[str, tuple[Path, str | None]]:
    """What the device needs: {path in the run's tree: (local file, sha256 if known)}."""
    weights = spec["weights"]
    files = {weights["path"]: (Path(weights["path"]), weights.get("sha256"))}
    for key in ("cfg", "symbol"):
        if weights.get(key):
            files[weights[key]] = (Path(weights[key]), weights.get(f"{key}_sha256"))
    model_file = spec.get("model_file") or {}
    if model_file.get("path") and not model_file.get("error"):
        files[model_file["path"]] = (Path(model_file["path"]), model_file.get("sha256"))
    folder = Path(spec["devkit"]) / "VOC2007" / "JPEGImages"
    for image_id in spec["image_ids"]:
        files[f"devkit/VOC2007/JPEGImages/{image_id}.jpg"] = (folder / f"{image_id}.jpg", None)
    for rel in files:
        if Path(rel).is_absolute() or ".." in Path(rel).parts:
            raise DeviceError(f"input path {rel}: expected a path relative to the workflow")
    return files


class Log:
    """The job's log: lines appended and flushed as they come."""

    def __init__(self, path: str | Path, device: str):
        self.handle = open(path, "a")
        self.device = device

    def say(self, text: str) -> None:
        self.handle.write(f"[ssh {self.device} {_now()}] {text}\n")
        self.handle.flush()

    def raw(self, text: str) -> None:
        self.handle.write(text)
        self.handle.flush()

    def close(self) -> None:
        self.handle.close()


class Agent:
    """The JSON-lines helper on the device."""

    def __init__(self, process: asyncssh.SSHClientProcess, device: dict):
        self.process = process
        self.device = device

    @classmethod
    async def start(cls, conn: asyncssh.SSHClientConnection, device: dict, cache: str) -> Agent:
        python = device["python"]
        command = " ".join(shlex.quote(a) for a in (python, "-u", "-c", AGENT_SOURCE, cache))
        process = await conn.create_process(command, encoding="utf-8")
        agent = cls(process, device)
        line = await process.stdout.readline()
        if not line:
            await process.wait_closed()
            errors = (await process.stderr.read()).strip()
            status = process.exit_status
            if status in (126, 127):
                raise DeviceError(
                    f"device {device['name']}: no Python at {python} on {device['host']} "
                    f"(exit {status}: {errors}); set devices[].python to the interpreter with "
                    "MXNet and GluonCV"
                )
            raise DeviceError(
                f"device {device['name']}: {python} on {device['host']} could not start the "
                f"agent (exit {status}): {errors[-2000:]}"
            )
        agent.hello = json.loads(line)
        return agent

    async def ask(self, **request) -> dict:
        self.process.stdin.write(json.dumps(request) + "\n")
        line = await self.process.stdout.readline()
        if not line:
            raise ConnectionLostError(f"device {self.device['name']}: the agent stopped")
        answer = json.loads(line)
        if "error" in answer:
            raise DeviceError(
                f"device {self.device['name']}: agent {request['op']}: {answer['error']}"
            )
        return answer

    async def clock(self, probes: int = 5) -> tuple[float, float]:
        """(round-trip seconds, device clock minus ours in seconds) of the fastest probe."""
        best = None
        for _ in range(probes):
            sent = time.time()
            remote = (await self.ask(op="time"))["time"]
            back = time.time()
            sample = (back - sent, remote - (sent + back) / 2)
            best = sample if best is None or sample[0] < best[0] else best
        return best

    async def close(self) -> None:
        self.process.stdin.write(json.dumps({"op": "bye"}) + "\n")
        self.process.stdin.write_eof()
        await self.process.wait_closed()


async def connect(device: dict, ssh: dict) -> asyncssh.SSHClientConnection:
    user, address = split_host(device["host"])
    known_hosts = os.path.expanduser(device.get("known_hosts") or "~/.ssh/known_hosts")
    if not os.path.isfile(known_hosts):
        raise DeviceError(
            f"device {device['name']}: no known_hosts file at {known_hosts}; add the device's "
            f"host key first (ssh-keyscan -p {device['port']} {address} >> {known_hosts}, after "
            "checking its fingerprint)"
        )
    options = {
        "port": device["port"],
        "username": user,
        "known_hosts": known_hosts,
        "keepalive_interval": ssh["keepalive_s"],
        "keepalive_count_max": 3,
        "connect_timeout": ssh["connect_timeout_s"],
    }
    if device.get("identity_file"):
        options["client_keys"] = [os.path.expanduser(device["identity_file"])]
    try:
        return await asyncssh.connect(address, **options)
    except asyncssh.HostKeyNotVerifiable as exc:
        raise DeviceError(
            f"device {device['name']}: host key of {address}:{device['port']} is not in "
            f"{known_hosts}: refused ({exc}); check the key's fingerprint on the device and add "
            f"it (ssh-keyscan -p {device['port']} {address} >> {known_hosts})"
        ) from exc
    except asyncssh.PermissionDenied as exc:
        raise DeviceError(
            f"device {device['name']}: {device['host']} refused our key ({exc}); put the public "
            "key of identity_file in the device's ~/.ssh/authorized_keys"
        ) from exc
    except (OSError, asyncssh.Error) as exc:
        raise ConnectionLostError(
            f"device {device['name']}: cannot connect to {device['host']} port {device['port']}: "
            f"{exc}"
        ) from exc


class Attempt:
    """One attempt at the run: connection, transfers, the remote process."""

    def __init__(self, spec: dict, run_dir: Path, device: dict, ssh: dict, log: Log, number: int):
        self.spec, self.run_dir, self.device, self.ssh = spec, run_dir, device, ssh
        self.log, self.number = log, number
        self.conn: asyncssh.SSHClientConnection | None = None
        self.pid: int | None = None
        self.lock = None
        self.bytes_sent = 0
        self.nonce = os.urandom(6).hex()  # upload names of its own: devices may share a cache

    async def send(self, agent: Agent) -> tuple[str, str, dict]:
        """Send what the cache lacks; returns (code folder, run folder, link facts)."""
        rtt, offset = await agent.clock()
        self.log.say(
            f"connected to {self.device['host']} port {self.device['port']}, Python "
            f"{agent.hello['python']}; rtt {rtt * 1000:.2f} ms, clock offset "
            f"{offset:+.4f} s"
        )
        archive, code = runner_archive()
        inputs = run_inputs(self.spec)
        digests = {}
        for rel, (path, known) in sorted(inputs.items()):
            if not path.is_file():
                raise DeviceError(f"device {self.device['name']}: input {path} is missing")
            digests[rel] = known or _hashed(path)
        sources = {digest: inputs[rel][0] for rel, digest in digests.items()}
        state = await agent.ask(op="missing", blobs=sorted(sources), code=code)
        uploads = {digest: sources[digest] for digest in state["missing"]}
        root = agent.hello["root"]
        async with self.conn.start_sftp_client() as sftp:
            if not state["code"]:
                part = f"{root}/blobs/.{code}.{self.nonce}.part"
                async with sftp.open(part, "wb") as handle:
                    await handle.write(archive)
                self.bytes_sent += len(archive)
                await agent.ask(op="commit", parts=[[part, code]])
                await agent.ask(op="unpack", code=code)
            parts = [
                [f"{root}/blobs/.{digest}.{self.nonce}.part", digest] for digest in sorted(uploads)
            ]
            semaphore = asyncio.Semaphore(8)

            async def put(part: str, digest: str) -> None:
                async with semaphore:
                    await sftp.put(str(uploads[digest]), part)

            await asyncio.gather(*(put(part, digest) for part, digest in parts))
            self.bytes_sent += sum(uploads[d].stat().st_size for d in uploads)
        if parts:
            bad = (await agent.ask(op="commit", parts=parts))["bad"]
            if bad:
                raise ConnectionLostError(
                    f"device {self.device['name']}: {len(bad)} file(s) arrived corrupted"
                )
        link = {
            "transport": "ssh",
            "host": self.device["host"],
            "port": self.device["port"],
            "rtt_ms": round(rtt * 1000, 3),
            "clock_offset_s": round(offset, 4),
            "files_sent": len(uploads) + (0 if state["code"] else 1),
            "files_cached": len(sources) - len(uploads) + (1 if state["code"] else 0),
            "attempt": self.number,
        }
        remote_spec = dict(self.spec, devkit="devkit", context=self.device["context"])
        remote_spec["link"] = dict(link, bytes_sent=self.bytes_sent + _size_of(remote_spec))
        self.bytes_sent = remote_spec["link"]["bytes_sent"]
        token = hashlib.sha256(str(self.run_dir.resolve()).encode()).hexdigest()[:16]
        run = (
            await agent.ask(
                op="prepare",
                token=f"{self.device['name']}-{token}",
                links=digests,
                spec=remote_spec,
            )
        )["run"]
        self.log.say(
            f"sent {link['files_sent']} file(s), {self.bytes_sent} bytes; "
            f"{link['files_cached']} already cached"
        )
        return f"{root}/code/{code}", run, link

    async def execute(self, code: str, run: str, root: str) -> int:
        python = self.device["python"]
        lock = f"{root}/locks/{self.device['name']}.lock"
        command = (
            f"cd {shlex.quote(run + '/root')} && echo DETBENCH_PID $$ && "
            f"PYTHONPATH={shlex.quote(code)} PYTHONUNBUFFERED=1 exec {shlex.quote(python)} "
            f"-m detbench.runner run --lock {shlex.quote(lock)} run/spec.json"
        )
        self.log.say("run started")
        process = await self.conn.create_process(
            command, stderr=asyncssh.STDOUT, encoding="utf-8", errors="replace"
        )
        async for line in process.stdout:
            if self.pid is None and line.startswith("DETBENCH_PID "):
                self.pid = int(line.split()[1])
                continue
            self.log.raw(line)
        await process.wait_closed()
        if process.exit_status is None and process.exit_signal is None:
            raise ConnectionLostError(
                f"device {self.device['name']}: connection lost during the run"
            )
        self.log.say(f"run ended: exit {process.exit_status}")
        return process.exit_status

    async def fetch(self, run: str) -> list[str]:
        """Bring the run's files into the staging folder; returns the names that came back."""
        staging = self.run_dir / STAGING
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        names = []
        async with self.conn.start_sftp_client() as sftp:
            for name in RUN_FILES:
                remote = f"{run}/root/run/{name}"
                if await sftp.exists(remote):
                    await sftp.get(remote, str(staging / name))
                    names.append(name)
        return names

    async def kill(self) -> None:
        """Interrupt, then kill, the remote runner (its own interrupt handling runs first)."""
        if self.pid is None or self.conn is None:
            return
        pid = self.pid
        self.log.say(f"stopping the remote runner (pid {pid})")
        script = f"kill -INT {pid} 2>/dev/null; for i in 1 2 3 4 5 6 7 8 9 10; do kill -0 {pid} "
        script += f"2>/dev/null || exit 0; sleep 0.5; done; kill -KILL {pid} 2>/dev/null; exit 0"
        await asyncio.wait_for(self.conn.run(script, check=False), 15)


def _hashed(path: Path, _cache: dict = {}) -> str:  # noqa: B006 (a per-process cache)
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if key not in _cache:
        _cache[key] = sha256_file(path)
    return _cache[key]


def _size_of(spec: dict) -> int:
    return len(json.dumps(spec, indent=2, sort_keys=True)) + 1


def publish(run_dir: Path, names: list[str]) -> None:
    """Move the staged files into the run directory, ``result.json`` last."""
    staging = run_dir / STAGING
    for name in RUN_FILES:
        if name in names:
            os.replace(staging / name, run_dir / name)
    shutil.rmtree(staging, ignore_errors=True)


async def _attempt(attempt: Attempt) -> int | None:
    """Run one attempt; returns the runner's exit status (files published when it left any)."""
    device = attempt.device
    attempt.conn = await connect(device, attempt.ssh)
    try:
        try:
            agent = await Agent.start(attempt.conn, device, attempt.ssh["cache"])
            code, run, _ = await attempt.send(agent)
            await agent.close()
            status = await attempt.execute(code, run, agent.hello["root"])
            names = await attempt.fetch(run) if status != EXIT_BUSY else []
            await attempt.conn.run(f"rm -rf {shlex.quote(run)}", check=False)
        except (asyncssh.ConnectionLost, asyncssh.DisconnectError, BrokenPipeError) as exc:
            raise ConnectionLostError(f"device {device['name']}: connection lost: {exc}") from exc
        except asyncio.CancelledError:
            await _kill_quietly(attempt)
            raise
        if status == EXIT_BUSY:
            raise DeviceError(
                f"device {device['name']}: busy with another run (its lock "
                f"locks/{device['name']}.lock is held on {device['host']})"
            )
        publish(attempt.run_dir, names)
        return status
    finally:
        attempt.conn.close()


async def _kill_quietly(attempt: Attempt) -> None:
    try:
        await attempt.kill()
    except (OSError, asyncssh.Error, TimeoutError) as exc:
        attempt.log.say(f"could not stop the remote runner (pid {attempt.pid}): {exc}")


async def _kill_leftover(attempt: Attempt) -> None:
    """After a lost connection: reconnect and kill what the lost attempt left running."""
    if attempt.pid is None:
        return
    try:
        attempt.conn = await connect(attempt.device, attempt.ssh)
        try:
            await attempt.kill()
        finally:
            attempt.conn.close()
    except (DeviceError, OSError, asyncssh.Error, TimeoutError) as exc:
        attempt.log.say(f"could not stop the lost attempt's runner (pid {attempt.pid}): {exc}")


async def run_remote(spec: dict, run_dir: Path, device: dict, ssh: dict, log: Log) -> int | None:
    tries = 1 + int(ssh["retries"])
    for number in range(1, tries + 1):
        attempt = Attempt(spec, run_dir, device, ssh, log, number)
        try:
            return await _attempt(attempt)
        except ConnectionLostError as exc:
            log.say(f"attempt {number} of {tries} failed: {exc}")
            shutil.rmtree(run_dir / STAGING, ignore_errors=True)
            await _kill_leftover(attempt)
            if number == tries:
                raise DeviceError(
                    f"{exc} (tried {tries} time(s); nothing was written to {run_dir})"
                ) from exc
            log.say("retrying")
    return None


def execute(spec: dict, run_dir: str | Path, device: dict, log_path: str | Path) -> int | None:
    """Run ``spec`` on the SSH ``device`` (an entry of :func:`detbench.plan.device_entry`) and
    bring its files into ``run_dir``; returns the runner's exit status. Raises DeviceError when
    the device cannot run it (after retries); Ctrl-C and SIGTERM stop the remote runner."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    log = Log(log_path, device["name"])
    ssh = device["ssh"]

    async def main() -> int | None:
        loop = asyncio.get_running_loop()
        main_thread = threading.current_thread() is threading.main_thread()
        if main_thread:  # SIGTERM (Snakemake stopping the job) stops the remote runner too
            loop.add_signal_handler(signal.SIGTERM, asyncio.current_task().cancel)
        try:
            return await asyncio.wait_for(
                run_remote(spec, run_dir, device, ssh, log), ssh["deadline_s"]
            )
        except TimeoutError as exc:
            raise DeviceError(
                f"device {device['name']}: the run passed its deadline of "
                f"{ssh['deadline_s']} s (ssh.deadline_s) and was stopped"
            ) from exc
        finally:
            if main_thread:
                loop.remove_signal_handler(signal.SIGTERM)

    try:
        return asyncio.run(main())
    except BaseException as exc:
        shutil.rmtree(run_dir / STAGING, ignore_errors=True)
        log.say(f"failed: {exc}" if isinstance(exc, Exception) else f"stopped: {exc!r}")
        raise
    finally:
        log.close()
