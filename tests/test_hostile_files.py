"""Files made to attack: pickles that would run code, archive bombs, oversized downloads are refused
in one line, and the refusal never suggests the unsafe retry."""

from __future__ import annotations

import os
import time

import pytest
import torch

from conftest import serve_files
from pix2pix_lib import weights as weights_module
from pix2pix_lib.cli import main
from pix2pix_lib.data import download as download_module
from pix2pix_lib.data import fetch as fetch_module
from hostile_inputs import archive, doodle, error_line, weights  # noqa: F401 (weights: a fixture)


class Payload:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_a_pickled_weights_file_is_refused_without_suggesting_the_unsafe_retry(tmp_path, capsys):
    evil = tmp_path / "evil.pt"
    torch.save({"format": "pix2pix-generator/1", "x": Payload()}, evil)
    doodle().save(tmp_path / "d.png")
    assert main(["generate", "--weights", str(evil), str(tmp_path / "d.png"), "-o", str(tmp_path / "o.png")]) == 2
    line = error_line(capsys)
    assert "could run code" in line and "refused" in line
    assert "weights_only" not in line and "Re-running" not in line
    (tmp_path / "random.pt").write_bytes(os.urandom(2000))
    with pytest.raises(ValueError, match="not a readable generator weights file"):
        weights_module.load_generator(tmp_path / "random.pt")


def test_archive_bombs_and_oversized_downloads_are_refused(tmp_path):
    bomb = tmp_path / "bomb.tar.gz"
    bomb.write_bytes(archive([("facades/train/zeros.jpg", bytes(60 * 2**20))]))
    assert bomb.stat().st_size < 200_000  # ~60 kB that unpack to 60 MB
    with pytest.raises(download_module.CorruptArchiveError, match="unpacks to more than"):
        download_module.safe_extract(bomb, tmp_path / "out")
    assert not (tmp_path / "out" / "facades").exists()
    many = tmp_path / "many.tar.gz"
    many.write_bytes(archive([(f"x/{i}.jpg", b"1") for i in range(30)]))
    with pytest.raises(download_module.CorruptArchiveError, match="more than 20 members"):
        download_module.safe_extract(many, tmp_path / "out2", max_members=20)

    server, url = serve_files({"big.tar.gz": os.urandom(300_000)})
    try:
        with pytest.raises(RuntimeError, match="announces"):
            fetch_module._download(f"{url}/big.tar.gz", tmp_path / "big.tar.gz", progress=False,
                                      max_bytes=100_000)
    finally:
        server.shutdown()
    server, url = serve_files({}, endless=True)
    try:
        start = time.monotonic()
        with pytest.raises(RuntimeError, match="goes on past"):
            fetch_module._download(f"{url}/endless.tar.gz", tmp_path / "endless.tar.gz", progress=False,
                                      max_bytes=1_000_000)
        assert time.monotonic() - start < 8
        assert list(tmp_path.glob("endless*")) == []
    finally:
        server.shutdown()
    assert download_module.max_download_bytes("facades") < 100 * 2**20
