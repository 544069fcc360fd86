"""What the tests of hostile inputs and refusals share: tiny settings, a doodle, a weights file, snapshots."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest
import torch
from PIL import Image, ImageDraw

from pix2pix_lib import weights as weights_module
from pix2pix_lib.config import TrainConfig
from pix2pix_lib.models import build_generator


TINY = dict(image_size=32, ngf=8, ndf=8, patch_size=16, batch_size=2, precision="fp32", seed=3, n_samples=2)
TINY_ARGS = ["--image-size", "32", "--ngf", "8", "--ndf", "8", "--patch-size", "16", "--batch-size", "2",
             "--precision", "fp32", "--epochs", "1", "--epochs-decay", "0", "--quiet"]


def doodle(size=120) -> Image.Image:
    im = Image.new("L", (size, size), 255)
    ImageDraw.Draw(im).ellipse([size // 4, size // 4, 3 * size // 4, 3 * size // 4], outline=0, width=4)
    return im


@pytest.fixture
def weights(tmp_path):
    torch.manual_seed(0)
    return weights_module.save_generator(tmp_path / "g.pt", build_generator(image_size=32, ngf=4),
                              TrainConfig(image_size=32, ngf=4).to_dict())


def snapshot(folder: Path) -> dict:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def error_line(capsys) -> str:
    """The one 'error:' line a refused command prints (progress bars may share stderr)."""
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def archive(members: list[tuple[str, bytes]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()
