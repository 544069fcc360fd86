"""Data-parallel training under torchrun: 2 CPU processes, gloo backend."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from pix2pix_lib.train import CHECKPOINT, load_checkpoint, read_log

ROOT = Path(__file__).resolve().parents[1]

WORKER = textwrap.dedent("""
    import sys
    import torch
    import torch.distributed as dist
    import pix2pix_lib.train as train
    from pix2pix_lib.config import TrainConfig

    data, out, dump = sys.argv[1:4]
    dist.init_process_group("gloo")
    rank = dist.get_rank()
    created = []  # keep a handle on each rank's model to compare weights afterwards
    original = train.Pix2Pix.from_config.__func__
    train.Pix2Pix.from_config = classmethod(lambda cls, *a, **k: created.append(original(cls, *a, **k)) or created[-1])
    config = TrainConfig(image_size=32, ngf=8, ndf=8, patch_size=16, batch_size=2, precision="fp32",
                         epochs=2, epochs_decay=0, n_samples=2, device="cpu")
    train.fit(config, data, out, progress=False)
    model = created[0]
    torch.save({"generator": model.generator.state_dict(), "discriminator": model.discriminator.state_dict(),
                "step": model.step}, f"{dump}/rank{rank}.pt")
    dist.destroy_process_group()
""")


@pytest.mark.slow
def test_two_gloo_processes_end_with_identical_weights_and_one_checkpoint(tmp_path):
    from conftest import write_tiny_pairs

    data = write_tiny_pairs(tmp_path / "pairs", n_train=8)
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    out, dump = tmp_path / "run", tmp_path / "dump"
    dump.mkdir()
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                    str(script), str(data), str(out), str(dump)], check=True, env=env, cwd=tmp_path, timeout=300)

    rank0, rank1 = (torch.load(dump / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    for net in ("generator", "discriminator"):
        for name, value in rank0[net].items():
            assert torch.equal(value, rank1[net][name]), f"{net}.{name} differs between ranks"
    # 8 pairs, 2 ranks, batch 2: each rank takes 2 steps per epoch (a DistributedSampler shard each).
    assert rank0["step"] == rank1["step"] == 4
    # Only rank 0 wrote: one checkpoint, one log row per epoch, one sample grid per epoch.
    assert load_checkpoint(out / CHECKPOINT).epoch == 2
    assert [row["epoch"] for row in read_log(out / "log.csv")] == [1, 2]
    assert sorted(p.name for p in (out / "samples").iterdir()) == ["epoch_001.png", "epoch_002.png"]
    assert not list(out.glob(".*.tmp"))
    # The checkpoint holds the weights both ranks agree on.
    saved = load_checkpoint(out / CHECKPOINT).generator.state_dict()
    assert all(torch.equal(saved[k], rank0["generator"][k]) for k in saved)
