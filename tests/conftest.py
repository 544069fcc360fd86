import os

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


@pytest.fixture
def tiny_pairs(tmp_path):
    return write_tiny_pairs(tmp_path / "pairs")
