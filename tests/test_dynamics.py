"""What the GAN-dynamics lab (notebook 04) reads from a run: losses every N steps, D's verdicts per
epoch, and the unconditional discriminator of the paper's "GAN" rows."""

from __future__ import annotations

import torch

from pix2pix_lib.config import TrainConfig
from pix2pix_lib.models import PatchDiscriminator
from pix2pix_lib.runs import read_log, read_verdicts
from pix2pix_lib.train import TrainingState, fit

TINY = dict(image_size=32, ngf=4, ndf=4, patch_size=16, batch_size=2, n_samples=2, precise_bn_batches=2,
            precision="fp32")


def test_steps_csv_has_a_row_every_n_steps_and_survives_a_resume(tmp_path):
    from conftest import write_tiny_pairs

    data = write_tiny_pairs(tmp_path / "pairs", n_train=12)  # 6 steps an epoch at batch 2
    config = TrainConfig(**TINY, epochs=2, epochs_decay=0, log_every=4)
    fit(config, data, tmp_path / "run", progress=False)
    rows = read_log(tmp_path / "run" / "steps.csv")
    assert [int(r["step"]) for r in rows] == [4, 6, 10, 12]  # every 4 steps, and each epoch's rest
    assert [int(r["steps"]) for r in rows] == [4, 2, 4, 2] and sum(r["steps"] for r in rows) == 12  # none lost
    assert {"loss_D_real", "loss_D_fake", "loss_G_gan", "loss_G_L1"} <= set(rows[0])
    assert 0 < rows[0]["epoch"] < rows[1]["epoch"] == 1 < rows[2]["epoch"] < rows[3]["epoch"] == 2
    # Lengthened and resumed: the rows up to the checkpoint stay, the new ones follow.
    fit(config.replace(epochs=3), data, tmp_path / "run", resume=True, progress=False)
    resumed = read_log(tmp_path / "run" / "steps.csv")
    assert [int(r["step"]) for r in resumed] == [4, 6, 10, 12, 16, 18]
    assert resumed[:4] == rows
    # The same run in one go writes the same rows (the log follows the exact resume).
    fit(config.replace(epochs=3), data, tmp_path / "straight", progress=False)
    assert read_log(tmp_path / "straight" / "steps.csv") == resumed


def test_each_epoch_saves_ds_verdicts_on_the_fixed_pairs(tmp_path):
    from conftest import write_tiny_pairs

    data = write_tiny_pairs(tmp_path / "pairs", n_train=8, n_val=2)
    fit(TrainConfig(**TINY, epochs=2, epochs_decay=0), data, tmp_path / "run", progress=False)
    verdicts = read_verdicts(tmp_path / "run")
    assert [v["epoch"] for v in verdicts] == [1, 2]
    for v in verdicts:
        assert v["real"].shape == v["fake"].shape == (2, 14, 14)  # 2 samples, the 16x16 PatchGAN map at 32 px
        assert 0 <= float(v["fake"].min()) and float(v["real"].max()) <= 1
    # An L1-only run has no discriminator to ask.
    fit(TrainConfig(**TINY, epochs=1, epochs_decay=0, use_gan=False), data, tmp_path / "l1", progress=False)
    assert read_verdicts(tmp_path / "l1") == []


def test_an_unconditional_discriminator_sees_only_the_image():
    d = PatchDiscriminator(in_channels=3, ndf=4, n_layers=1, conditional=False)
    b = torch.rand(2, 3, 32, 32)
    assert torch.equal(d(torch.rand(2, 3, 32, 32), b), d(torch.zeros(2, 3, 32, 32), b))  # A is ignored
    model = TrainingState.from_config(TrainConfig(**TINY, conditional_d=False), "cpu")
    assert model.discriminator.net[0].in_channels == 3 and not model.discriminator.conditional
    losses = model.training_step(torch.rand(2, 3, 32, 32) * 2 - 1, torch.rand(2, 3, 32, 32) * 2 - 1)
    assert all(torch.isfinite(torch.tensor(v)) for v in losses.values())
    conditional = TrainingState.from_config(TrainConfig(**TINY), "cpu").discriminator
    assert conditional.net[0].in_channels == 6 and conditional.conditional
