"""download_dataset against a local HTTP server serving archives the tests build."""

import http.server
import io
import random
import tarfile
import threading

import pytest

from pix2pix_lib.cli import main
from pix2pix_lib.data import download_dataset, safe_extract
from pix2pix_lib.data import download as download_module


def _tar_bytes(members):
    """members: list of (name, bytes or None for a folder, or ('sym', target))."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            if data is None:
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            elif isinstance(data, tuple):
                info.type, info.linkname = tarfile.SYMTYPE, data[1]
                tar.addfile(info)
            else:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


PAYLOAD = random.Random(0).randbytes(5000)  # incompressible: the archive stays ~5 kB


def _good(name="facades"):
    return [(name, None), (f"{name}/train", None), (f"{name}/train/1.jpg", PAYLOAD),
            (f"{name}/val", None), (f"{name}/val/2.jpg", b"y" * 300)]


GOOD = _good()


class _Server:
    """ThreadingHTTPServer on 127.0.0.1 with in-memory files, optional Range support and lies."""

    def __init__(self):
        self.files, self.requests = {}, []
        self.range_support, self.short_by = True, 0
        self.pause_at, self.on_pause = None, None  # send this many bytes, call on_pause(), then the rest
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                outer.requests.append(dict(self.headers))
                data = outer.files.get(self.path.rsplit("/", 1)[-1])
                if data is None:
                    self.send_error(404)
                    return
                start = 0
                rng = self.headers.get("Range")
                if rng and outer.range_support:
                    start = int(rng.split("=")[1].split("-")[0])
                    if start >= len(data):
                        self.send_error(416)
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                else:
                    self.send_response(200)
                self.send_header("Content-Length", str(len(data) - start))
                self.end_headers()
                # short_by > 0: promise Content-Length, then hang up early (a broken connection).
                body = data[start: len(data) - outer.short_by]
                if outer.pause_at is not None:
                    self.wfile.write(body[: outer.pause_at])
                    self.wfile.flush()
                    outer.on_pause()
                    body = body[outer.pause_at:]
                try:
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):  # the client stopped (Ctrl-C)
                    pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/datasets"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    s = _Server()
    yield s
    s.close()


def test_download_and_extract(server, tmp_path):
    server.files["facades.tar.gz"] = _tar_bytes(GOOD)
    out = download_dataset("facades", tmp_path, base_url=server.url, progress=False)
    assert out == tmp_path / "facades"
    assert (out / "train" / "1.jpg").read_bytes() == PAYLOAD
    assert (out / "val" / "2.jpg").exists()
    assert not (tmp_path / "facades.tar.gz").exists()  # archive removed after extraction
    assert sorted(p.name for p in tmp_path.iterdir()) == ["facades"]  # no temp folders left
    n = len(server.requests)
    download_dataset("facades", tmp_path, base_url=server.url, progress=False)
    assert len(server.requests) == n  # already there: no second download


def test_resume_with_range(server, tmp_path):
    data = _tar_bytes(_good("maps"))
    assert len(data) > 4000
    server.files["maps.tar.gz"], server.short_by = data, len(data) - 1000  # the first try stops at 1000 bytes
    with pytest.raises(RuntimeError, match="again to resume"):
        download_dataset("maps", tmp_path, base_url=server.url, progress=False)
    server.short_by = 0
    out = download_dataset("maps", tmp_path, base_url=server.url, progress=False)
    assert server.requests[-1].get("Range") == "bytes=1000-"
    assert (out / "train" / "1.jpg").read_bytes() == PAYLOAD


def test_server_without_range_restarts(server, tmp_path):
    data = _tar_bytes(_good("maps"))
    server.files["maps.tar.gz"], server.short_by = data, 2000
    with pytest.raises(RuntimeError, match="again to resume"):
        download_dataset("maps", tmp_path, base_url=server.url, progress=False)
    server.short_by, server.range_support = 0, False  # asked for the rest, it sends the whole file
    out = download_dataset("maps", tmp_path, base_url=server.url, progress=False)
    assert server.requests[-1].get("Range") == f"bytes={len(data) - 2000}-"
    assert (out / "val" / "2.jpg").read_bytes() == b"y" * 300
    assert sorted(p.name for p in tmp_path.iterdir()) == ["maps"]


def test_interrupted_download_is_kept_for_resume(server, tmp_path):
    data = _tar_bytes(_good("maps"))
    server.files["maps.tar.gz"], server.short_by = data, 100
    with pytest.raises(RuntimeError, match=r"(incomplete|interrupted).*again to resume"):
        download_dataset("maps", tmp_path, base_url=server.url, progress=False)
    part = tmp_path / "maps.tar.gz.part"
    assert part.stat().st_size == len(data) - 100 and not (tmp_path / "maps").exists()
    server.short_by = 0
    out = download_dataset("maps", tmp_path, base_url=server.url, progress=False)
    assert server.requests[-1].get("Range") == f"bytes={len(data) - 100}-"
    assert (out / "train" / "1.jpg").read_bytes() == PAYLOAD


def test_truncated_archive_rejected_nothing_left(server, tmp_path):
    data = _tar_bytes(GOOD)
    server.files["facades.tar.gz"] = data[: len(data) // 2]  # served whole, but a broken gzip
    with pytest.raises(RuntimeError, match=r"facades\.tar\.gz: corrupt or truncated archive"):
        download_dataset("facades", tmp_path, base_url=server.url, progress=False)
    assert list(tmp_path.iterdir()) == []  # no dataset, no temp folder, bad archive deleted


@pytest.mark.parametrize("member", [
    ("../evil.txt", b"boom"),
    ("facades/../../evil.txt", b"boom"),
    ("/tmp/evil.txt", b"boom"),
    ("facades/link", ("sym", "../../outside")),
])
def test_unsafe_members_rejected(server, tmp_path, member):
    server.files["facades.tar.gz"] = _tar_bytes(GOOD + [member])
    root = tmp_path / "root"
    with pytest.raises(RuntimeError, match="unsafe archive member"):
        download_dataset("facades", root, base_url=server.url, progress=False)
    assert not (tmp_path / "evil.txt").exists() and not (root / "facades").exists()
    assert list(root.iterdir()) == []


@pytest.mark.parametrize("members, message", [
    ([("../evil", b"x")], r"'\.\./evil'.*'\.\.'"),
    # Each link alone looks harmless; chained, esc/ is the parent of the target folder.
    ([("k", ("sym", ".")), ("esc", ("sym", "k/../outside")), ("esc/evil", b"x")], r"'k'.*link"),
])
def test_safe_extract_checks_without_the_library_filter(tmp_path, monkeypatch, members, message):
    # Python < 3.11.4 has no tarfile data filter: our own check must hold alone.
    (tmp_path / "a.tar.gz").write_bytes(_tar_bytes(members))
    monkeypatch.delattr(download_module.tarfile, "data_filter", raising=False)
    with pytest.raises(RuntimeError, match=message):
        safe_extract(tmp_path / "a.tar.gz", tmp_path / "out" / "inner")
    assert not (tmp_path / "evil").exists() and not (tmp_path / "out" / "outside").exists()
    assert not (tmp_path / "out" / "inner").exists()


def test_unknown_name_and_404(server, tmp_path):
    with pytest.raises(ValueError, match="unknown dataset 'shoes'"):
        download_dataset("shoes", tmp_path)
    with pytest.raises(RuntimeError, match="HTTP 404"):
        download_dataset("night2day", tmp_path, base_url=server.url, progress=False)


def test_cli_download(server, tmp_path, capsys):
    server.files["facades.tar.gz"] = _tar_bytes(GOOD)
    assert main(["download", "facades", "--root", str(tmp_path), "--base-url", server.url]) == 0
    assert (tmp_path / "facades" / "train" / "1.jpg").exists()
    assert str(tmp_path / "facades") in capsys.readouterr().out
    assert main(["download", "cityscapes", "--root", str(tmp_path), "--base-url", server.url]) == 2
    assert "HTTP 404" in capsys.readouterr().err


def test_carvana_without_kaggle_explains(tmp_path, monkeypatch):
    import builtins
    real_import = builtins.__import__

    def no_kaggle(name, *args, **kwargs):
        if name == "kaggle":
            raise ImportError("no kaggle")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_kaggle)
    with pytest.raises(RuntimeError, match=r"(?s)kaggle\.json.*train_masks"):
        download_module.download_carvana(tmp_path)
