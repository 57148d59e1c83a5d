"""The device-side helper of a run over SSH, run as ``PYTHON -u -c AGENT CACHE_ROOT``.

It needs only the standard library of Python >= 3.6 (the seed stack), reads one JSON request a
line on stdin and answers one JSON line on stdout. ``CACHE_ROOT`` (relative to the login's home)
holds ``blobs/<sha256>`` (content-addressed inputs: weights, images, runner archives),
``code/<sha256>/`` (an unpacked runner archive), ``runs/<token>/`` (one run's tree of links into
``blobs/`` and its run directory) and ``locks/<device>.lock``.

Requests: ``time`` (the device's clock), ``missing`` (which blobs and code are absent),
``commit`` (check and publish uploaded blobs), ``unpack`` (a runner archive into ``code/``),
``prepare`` (a run's tree and spec), ``bye``.
"""

SOURCE = r"""
import hashlib, json, os, shutil, sys, tarfile, time

ROOT = os.path.abspath(os.path.expanduser(os.path.join("~", sys.argv[1])))
for sub in ("blobs", "code", "runs", "locks"):
    if not os.path.isdir(os.path.join(ROOT, sub)):
        os.makedirs(os.path.join(ROOT, sub))


def reply(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def blob(digest):
    return os.path.join(ROOT, "blobs", digest)


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def handle(msg):
    op = msg["op"]
    if op == "time":
        return {"time": time.time()}
    if op == "missing":
        code = os.path.isdir(os.path.join(ROOT, "code", msg["code"]))
        return {"missing": [d for d in msg["blobs"] if not os.path.isfile(blob(d))], "code": code}
    if op == "commit":
        bad = []
        for part, digest in msg["parts"]:
            if sha256(part) != digest:
                os.remove(part)
                bad.append(digest)
            else:  # a rename over an identical blob another upload published is harmless
                os.rename(part, blob(digest))
        return {"bad": bad}
    if op == "unpack":
        final = os.path.join(ROOT, "code", msg["code"])
        tmp = final + ".tmp%d" % os.getpid()
        with tarfile.open(blob(msg["code"])) as tar:
            tar.extractall(tmp)
        try:
            os.rename(tmp, final)
        except OSError:  # another agent unpacked the same archive first
            if not os.path.isdir(final):
                raise
            shutil.rmtree(tmp)
        return {"code": final}
    if op == "prepare":
        run = os.path.join(ROOT, "runs", msg["token"])
        if os.path.isdir(run):
            shutil.rmtree(run)
        tree = os.path.join(run, "root")
        for rel, digest in sorted(msg["links"].items()):
            path = os.path.join(tree, rel)
            if not os.path.isdir(os.path.dirname(path)):
                os.makedirs(os.path.dirname(path))
            os.symlink(blob(digest), path)
        os.makedirs(os.path.join(tree, "run"))
        with open(os.path.join(tree, "run", "spec.json"), "w") as f:
            json.dump(msg["spec"], f, indent=2, sort_keys=True)
            f.write("\n")
        return {"run": run}
    raise ValueError("unknown request: %r" % op)


reply({"ready": True, "python": sys.version.split()[0], "root": ROOT})
for line in sys.stdin:
    msg = json.loads(line)
    if msg["op"] == "bye":
        break
    try:
        reply(handle(msg))
    except Exception as exc:
        reply({"error": "%s: %s" % (type(exc).__name__, exc)})
"""
