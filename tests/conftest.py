import http.server
import os
import threading
import time

import pytest
import torch

# Tests are small; one thread per pytest worker keeps two workers from fighting over two cores.
torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def write_tiny_pairs(root, *, size=32, n_train=8, n_val=2, seed=0):
    """A folder of A|B pairs: A = a circle's outline, B = the same circle filled with a colour."""
    import numpy as np
    from PIL import Image, ImageDraw

    rng = np.random.default_rng(seed)
    for split, n in (("train", n_train), ("val", n_val)):
        folder = root / split
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(n):
            a, b = Image.new("RGB", (size, size), "white"), Image.new("RGB", (size, size), "white")
            x, y = rng.integers(size // 4, 3 * size // 4, 2)
            r = int(rng.integers(size // 8, size // 4))
            colour = tuple(int(c) for c in rng.integers(0, 200, 3))
            box = [x - r, y - r, x + r, y + r]
            ImageDraw.Draw(b).ellipse(box, fill=colour, outline="black", width=2)
            ImageDraw.Draw(a).ellipse(box, outline="black", width=2)
            pair = Image.new("RGB", (2 * size, size))
            pair.paste(a, (0, 0))
            pair.paste(b, (size, 0))
            pair.save(folder / f"{split}_{i:03d}.png")
    return root


def write_car_photos(images, masks, n=3):
    """`n` small car photos (car<i>_01.jpg) in `images` and their masks (car<i>_01_mask.png) in `masks`."""
    from PIL import Image, ImageDraw

    for folder in (images, masks):
        folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        Image.new("RGB", (40, 30), (200, 30 * i, 50)).save(images / f"car{i}_01.jpg")
        mask = Image.new("L", (40, 30), 0)
        ImageDraw.Draw(mask).rectangle([5, 5, 30, 25], fill=255)
        mask.save(masks / f"car{i}_01_mask.png")
    return images, masks


@pytest.fixture
def no_downloads(monkeypatch):
    """Any attempt to fetch weights fails the test."""
    def refuse(*args, **kwargs):
        raise AssertionError("a download was attempted")
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", refuse)
    monkeypatch.setattr(torch.hub, "download_url_to_file", refuse)


@pytest.fixture
def tiny_pairs(tmp_path):
    return write_tiny_pairs(tmp_path / "pairs")


def serve_files(files: dict, endless: bool = False):
    """An HTTP server on 127.0.0.1 serving `files` by name (or a response that never ends) -> (server, url)."""
    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            name = self.path.rsplit("/", 1)[-1]
            if endless:
                self.send_response(200)
                self.end_headers()
                deadline = time.monotonic() + 10  # bounded: the client must stop long before
                try:
                    while time.monotonic() < deadline:
                        self.wfile.write(b"\0" * 65536)
                except (BrokenPipeError, ConnectionResetError):
                    pass
                return
            data = files.get(name)
            if data is None:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"
