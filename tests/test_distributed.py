"""Data-parallel training under torchrun: 2 CPU processes, gloo backend."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from pix2pix_lib.runs import CHECKPOINT, read_log
from pix2pix_lib.train import load_checkpoint

ROOT = Path(__file__).resolve().parents[1]

WORKER = textwrap.dedent("""
    import sys
    import torch
    import torch.distributed as dist
    import pix2pix_lib.train as train
    from pix2pix_lib.config import TrainConfig

    data, out, dump, epochs, resume = sys.argv[1:6]
    dist.init_process_group("gloo")
    rank = dist.get_rank()
    created = []  # keep a handle on each rank's model to compare weights afterwards
    original = train.TrainingState.from_config.__func__
    train.TrainingState.from_config = classmethod(lambda cls, *a, **k: created.append(original(cls, *a, **k)) or created[-1])
    config = TrainConfig(image_size=32, ngf=8, ndf=8, patch_size=16, batch_size=2, precision="fp32",
                         epochs=int(epochs), epochs_decay=0, n_samples=2, device="cpu")
    train.fit(config, data, out, resume=resume == "resume", progress=False)
    model = created[0]
    torch.save({"generator": model.generator.state_dict(), "discriminator": model.discriminator.state_dict(),
                "step": model.step}, f"{dump}/rank{rank}.pt")
    dist.destroy_process_group()
""")


def _torchrun(worker, data, out, dump, epochs, resume=False):
    dump.mkdir(exist_ok=True)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                    str(worker), str(data), str(out), str(dump), str(epochs), "resume" if resume else "new"],
                   check=True, env=env, cwd=worker.parent, timeout=300)
    return [torch.load(dump / f"rank{r}.pt", weights_only=True) for r in (0, 1)]


@pytest.fixture(scope="module")
def two_rank_run(tmp_path_factory):
    """2 processes, 2 epochs, straight through: (data folder, worker script, run folder, per-rank state)."""
    from conftest import write_tiny_pairs

    tmp = tmp_path_factory.mktemp("ddp")
    data = write_tiny_pairs(tmp / "pairs", n_train=8)
    worker = tmp / "worker.py"
    worker.write_text(WORKER)
    ranks = _torchrun(worker, data, tmp / "run", tmp / "dump", epochs=2)
    return data, worker, tmp / "run", ranks


@pytest.mark.slow
def test_two_gloo_processes_end_with_identical_weights_and_one_checkpoint(two_rank_run):
    _, _, out, (rank0, rank1) = two_rank_run
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


@pytest.mark.slow
def test_two_gloo_processes_resume_to_the_same_weights_as_a_straight_run(two_rank_run, tmp_path):
    data, worker, straight_out, (straight, _) = two_rank_run
    run = tmp_path / "run"
    _torchrun(worker, data, run, tmp_path / "dump1", epochs=1)
    assert load_checkpoint(run / CHECKPOINT).epoch == 1
    rank0, rank1 = _torchrun(worker, data, run, tmp_path / "dump2", epochs=2, resume=True)

    assert rank0["step"] == rank1["step"] == straight["step"] == 4
    for net in ("generator", "discriminator"):
        for name, value in straight[net].items():
            assert torch.equal(rank0[net][name], value), f"{net}.{name}: resumed run differs from straight run"
            assert torch.equal(rank1[net][name], value), f"{net}.{name}: rank 1 differs after resume"
    straight_log, resumed_log = read_log(straight_out / "log.csv"), read_log(run / "log.csv")
    assert [r["val_l1"] for r in resumed_log] == [r["val_l1"] for r in straight_log]


@pytest.mark.slow
def test_the_cli_under_torchrun_trains_in_two_processes(tmp_path):
    # `torchrun -m pix2pix_lib train ...` as the README writes it: run_train sets up the group.
    from conftest import write_tiny_pairs

    data = write_tiny_pairs(tmp_path / "pairs", n_train=8)
    out = tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "pix2pix_lib",
         "train", "--data", str(data), "--out", str(out), "--image-size", "32", "--ngf", "8", "--ndf", "8",
         "--patch-size", "16", "--batch-size", "2", "--precision", "fp32", "--epochs", "1", "--epochs-decay", "0",
         "--n-samples", "2", "--quiet"],
        env=env, cwd=tmp_path, timeout=300, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.count("best validation L1") == 1  # rank 0 reports, rank 1 stays quiet
    model = load_checkpoint(out / CHECKPOINT)
    assert (model.epoch, model.step) == (1, 2)  # 8 pairs / 2 ranks / batch 2: 2 steps per rank
