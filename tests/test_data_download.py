"""fetch_voc against a real HTTP server on 127.0.0.1 serving a tar built here."""

from __future__ import annotations

import hashlib
import io
import socket
import tarfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from detbench.data.download import fetch_voc
from detbench.data.errors import ChecksumError, DownloadError, OfflineError


def build_tar() -> bytes:
    """A small VOCdevkit tar, big enough (~200 KB) to be sent in many chunks."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for i in range(4):
            data = bytes(range(256)) * 200 + str(i).encode()
            info = tarfile.TarInfo(f"VOCdevkit/VOC2007/JPEGImages/{i:06d}.jpg")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


TAR = build_tar()
MD5 = hashlib.md5(TAR).hexdigest()


class Handler(BaseHTTPRequestHandler):
    """Routes: ``/range/<f>`` honours ``Range: bytes=N-``; ``/plain/<f>`` ignores it;
    ``/drop/<f>`` honours it but cuts the body short on its first ``server.drops`` answers;
    ``/fail`` answers 500; anything else 404. Every request is logged as (path, Range)."""

    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_GET(self):
        server = self.server
        server.log.append((self.path, self.headers.get("Range")))
        if self.path == "/fail":
            self.send_error(500, "Internal Server Error")
            return
        kind, _, name = self.path.strip("/").partition("/")
        body = server.files.get(name)
        if body is None or kind not in ("range", "plain", "drop"):
            self.send_error(404, "Not Found")
            return
        start, range_header = 0, self.headers.get("Range")
        if range_header and kind != "plain":
            start = int(range_header.removeprefix("bytes=").split("-")[0])
            if start >= len(body):
                self.send_error(416, "Range Not Satisfiable")
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        else:
            self.send_response(200)
        if kind != "plain":
            self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Length", str(len(body) - start))
        self.end_headers()
        payload = body[start:]
        if kind == "drop" and server.drops > 0:
            server.drops -= 1
            payload = payload[: len(payload) // 3]
            self.close_connection = True
        self.wfile.write(payload)
        self.wfile.flush()


@pytest.fixture
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.files, httpd.log, httpd.drops = {"voc.tar": TAR}, [], 0
    httpd.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def fetch(urls, dest, md5=MD5, **kwargs):
    options = {"progress": False, "attempts": 3, "timeout": 5.0, "backoff_s": 0.0} | kwargs
    return fetch_voc(urls, md5, dest, **options)


def closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/voc.tar"


def test_good_mirror_downloads_verified_file_and_leaves_no_part(server, tmp_path):
    dest = tmp_path / "sub" / "VOCtest.tar"
    assert fetch([f"{server.url}/range/voc.tar"], dest) == dest
    assert dest.read_bytes() == TAR
    assert sorted(p.name for p in dest.parent.iterdir()) == ["VOCtest.tar"]


def test_first_mirror_404_falls_back_to_second(server, tmp_path):
    dest = tmp_path / "VOCtest.tar"
    fetch([f"{server.url}/range/missing.tar", f"{server.url}/range/voc.tar"], dest)
    assert dest.read_bytes() == TAR
    assert [path for path, _ in server.log] == ["/range/missing.tar", "/range/voc.tar"]


def test_md5_mismatch_removes_file_and_names_expected_and_actual(server, tmp_path):
    server.files["voc.tar"] = TAR[:-1] + b"X"
    dest = tmp_path / "VOCtest.tar"
    with pytest.raises(ChecksumError) as caught:
        fetch([f"{server.url}/range/voc.tar"], dest)
    message = str(caught.value)
    assert MD5 in message and hashlib.md5(TAR[:-1] + b"X").hexdigest() in message
    assert "removed" in message and caught.value.removed
    assert list(tmp_path.iterdir()) == []


def test_connection_dropped_mid_body_resumes_with_range(server, tmp_path):
    server.drops = 1
    dest = tmp_path / "VOCtest.tar"
    fetch([f"{server.url}/drop/voc.tar"], dest)
    assert dest.read_bytes() == TAR
    assert server.log == [("/drop/voc.tar", None), ("/drop/voc.tar", f"bytes={len(TAR) // 3}-")]


def test_part_file_from_earlier_run_is_resumed_via_range(server, tmp_path):
    dest = tmp_path / "VOCtest.tar"
    (tmp_path / "VOCtest.tar.part").write_bytes(TAR[:5000])
    fetch([f"{server.url}/range/voc.tar"], dest)
    assert dest.read_bytes() == TAR
    assert server.log == [("/range/voc.tar", "bytes=5000-")]


def test_server_without_range_support_downloads_from_start(server, tmp_path):
    dest = tmp_path / "VOCtest.tar"
    (tmp_path / "VOCtest.tar.part").write_bytes(b"stale bytes that must not survive")
    fetch([f"{server.url}/plain/voc.tar"], dest)
    assert dest.read_bytes() == TAR


def test_corrupt_part_file_is_refetched_whole_after_md5_mismatch(server, tmp_path):
    dest = tmp_path / "VOCtest.tar"
    (tmp_path / "VOCtest.tar.part").write_bytes(b"\0" * 5000)
    fetch([f"{server.url}/range/voc.tar"], dest)
    assert dest.read_bytes() == TAR
    assert server.log == [("/range/voc.tar", "bytes=5000-"), ("/range/voc.tar", None)]


def test_complete_part_file_answered_416_is_verified_and_kept(server, tmp_path):
    dest = tmp_path / "VOCtest.tar"
    (tmp_path / "VOCtest.tar.part").write_bytes(TAR)
    fetch([f"{server.url}/range/voc.tar"], dest)
    assert dest.read_bytes() == TAR


def test_every_mirror_failing_lists_each_url_and_reason(server, tmp_path):
    server.drops = 10
    urls = [f"{server.url}/range/missing.tar", f"{server.url}/fail", f"{server.url}/drop/voc.tar"]
    dest = tmp_path / "VOCtest.tar"
    with pytest.raises(DownloadError) as caught:
        fetch(urls, dest, attempts=2)
    assert not isinstance(caught.value, OfflineError)
    message = str(caught.value)
    for url in urls:
        assert url in message
    assert "HTTP 404" in message and "HTTP 500" in message and "connection closed" in message
    assert [url for url, _ in caught.value.failures] == urls
    assert not dest.exists()
    assert (tmp_path / "VOCtest.tar.part").stat().st_size > 0, "partial download kept to resume"
    assert "voc.archive" in message


def test_unreachable_server_raises_offline_error_naming_fixes(tmp_path):
    url = closed_port_url()
    with pytest.raises(OfflineError) as caught:
        fetch([url], tmp_path / "VOCtest.tar")
    message = str(caught.value)
    assert url in message and "no network" in message
    for fix in ("voc.archive", "voc.root", "--configfile config/demo.yaml"):
        assert fix in message
    assert list(tmp_path.iterdir()) == []


def test_verified_dest_already_present_is_not_downloaded_again(tmp_path):
    dest = tmp_path / "VOCtest.tar"
    dest.write_bytes(TAR)
    assert fetch([closed_port_url()], dest) == dest


def test_foreign_dest_with_wrong_md5_is_left_alone(tmp_path):
    dest = tmp_path / "VOCtest.tar"
    dest.write_bytes(b"not the archive")
    with pytest.raises(ChecksumError, match="left in place"):
        fetch([closed_port_url()], dest)
    assert dest.read_bytes() == b"not the archive"
