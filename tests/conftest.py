import os

import pytest
import torch

# Tests are small; one thread per pytest worker keeps two workers from fighting over two cores.
torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
