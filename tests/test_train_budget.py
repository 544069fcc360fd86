"""A training run a class can sit through: a time budget that ends it cleanly, feedback long before
the first epoch ends, a plan line before the first step, and no folder left by a failed start."""

import logging

import pytest
import torch
from PIL import Image

from pix2pix_lib import cli
from pix2pix_lib.config import TrainConfig
from pix2pix_lib.runs import BEST_GENERATOR, CHECKPOINT, read_log
from pix2pix_lib.train import EpochReport, ProgressReport, fit, load_checkpoint
from pix2pix_lib.weights import load_generator

TINY = dict(image_size=32, ngf=8, ndf=8, patch_size=16, batch_size=2, precision="fp32", seed=3, n_samples=2)


def test_a_spent_budget_ends_the_run_cleanly_with_its_best_model_and_it_resumes(tiny_pairs, tmp_path, caplog):
    run = tmp_path / "run"
    config = TrainConfig(**TINY, epochs=3, epochs_decay=0, max_minutes=1e-4)  # 6 ms: spent after one step
    with caplog.at_level(logging.INFO, logger="pix2pix_lib"):
        history = fit(config, tiny_pairs, run, progress=False)
    assert [row["epoch"] for row in history] == [1] and history[0]["step"] == 1  # one step, then the budget
    said = [r.message for r in caplog.records if "time budget of 0.0001 min reached" in r.message]
    assert len(said) == 1 and "training ended after epoch 1 of 3" in said[0]
    assert "that epoch was cut after 1 of 4 steps" in said[0] and "train on from epoch 2" in said[0]
    _, card = load_generator(run / BEST_GENERATOR)  # the best model so far, validated and saved
    assert card.epoch == 1 and card.metrics["l1"] == pytest.approx(history[0]["val_l1"])
    assert load_checkpoint(run / CHECKPOINT).epoch == 1 and len(read_log(run / "log.csv")) == 1
    history = fit({"max_minutes": 0}, tiny_pairs, run, resume=True, progress=False)  # the rest: 0 is no budget
    assert [row["epoch"] for row in history] == [1, 2, 3] and history[-1]["step"] == 1 + 2 * 4


def test_the_budget_is_an_option_of_the_train_verb(tiny_pairs, tmp_path, capsys):
    args = ["train", "--data", str(tiny_pairs), "--out", str(tmp_path / "run"), "--image-size", "32", "--ngf", "8",
            "--ndf", "8", "--patch-size", "16", "--batch-size", "2", "--precision", "fp32", "--epochs", "2",
            "--epochs-decay", "0", "--n-samples", "2", "--precise-bn-batches", "1", "--quiet", "--max-minutes", "0.0001"]
    assert cli.main(args) == 0
    out = capsys.readouterr().out
    first = out.splitlines()[0]
    assert first.startswith("training into") and "cpu (fp32)" in first and "8 training / 2 validation pairs" in first
    assert "4 steps of 2 per epoch" in first and "time budget 0.0001 min" in first  # the plan, before any step
    assert "time budget of 0.0001 min reached" in out and "best validation L1" in out
    assert load_checkpoint(tmp_path / "run" / CHECKPOINT).epoch == 1


def test_progress_reports_come_before_the_first_epoch_ends_and_change_nothing(tiny_pairs, tmp_path):
    events = []
    config = TrainConfig(**TINY, epochs=1, epochs_decay=0, log_every=1)
    fit(config, tiny_pairs, tmp_path / "reported", progress=False, report_seconds=0,
        on_progress=events.append, on_epoch_end=events.append)
    progress = [e for e in events if isinstance(e, ProgressReport)]
    assert isinstance(events[0], ProgressReport) and isinstance(events[-1], EpochReport)
    assert [r.step for r in progress] == [1, 2, 3, 4] and progress[1].epoch == pytest.approx(0.5)
    first = progress[0]
    assert set(first.losses) == {"G_gan", "G_L1", "D_real", "D_fake"} and first.images_per_s > 0
    assert first.eta_s >= 0 and first.budget_left_s is None and first.history == []
    assert isinstance(first.samples, Image.Image) and first.samples.size == (3 * 32 + 4 * 2, 2 * 32 + 3 * 2)
    assert len(progress[-1].steps) == 4  # the step windows so far: the first curve
    # The reports only look: the same run without them ends with the same weights.
    fit(config, tiny_pairs, tmp_path / "quiet", progress=False)
    reported, quiet = (torch.load(tmp_path / name / CHECKPOINT, weights_only=True)["generator"]
                       for name in ("reported", "quiet"))
    assert all(torch.equal(reported[k], quiet[k]) for k in quiet)


def test_a_failed_start_leaves_no_run_folder_behind(tiny_pairs, tmp_path):
    (tiny_pairs / "train" / "broken.png").write_bytes(b"not a png")
    with pytest.raises(ValueError, match="broken.png"):
        fit(TrainConfig(**TINY, epochs=1, epochs_decay=0), tiny_pairs, tmp_path / "run", progress=False)
    assert not (tmp_path / "run").exists()
    mine = tmp_path / "mine"  # a folder that was there before is never removed
    mine.mkdir()
    with pytest.raises(ValueError, match="broken.png"):
        fit(TrainConfig(**TINY, epochs=1, epochs_decay=0), tiny_pairs, mine, progress=False)
    assert mine.is_dir()


def test_tensorboard_logs_the_run_or_is_refused_in_one_line_without_its_package(tiny_pairs, tmp_path, capsys):
    import importlib.util

    args = ["train", "--data", str(tiny_pairs), "--out", str(tmp_path / "run"), "--image-size", "32", "--ngf", "8",
            "--ndf", "8", "--patch-size", "16", "--batch-size", "2", "--precision", "fp32", "--epochs", "1",
            "--epochs-decay", "0", "--n-samples", "2", "--precise-bn-batches", "1", "--quiet", "--tensorboard"]
    if importlib.util.find_spec("tensorboard") is None:
        assert cli.main(args) == 2
        err = capsys.readouterr().err
        assert "pip install tensorboard" in err and "Traceback" not in err and not (tmp_path / "run").exists()
        pytest.skip("the tensorboard package is not installed: only its refusal was checked")
    assert cli.main(args) == 0
    events = list((tmp_path / "run" / "tensorboard").glob("events.out.tfevents.*"))
    assert len(events) == 1 and events[0].stat().st_size > 1000  # the scalars and the sample grid


def test_the_tensorboard_log_writes_losses_metrics_and_the_grid(tiny_pairs, tmp_path, monkeypatch):
    import sys
    import types

    from pix2pix_lib.train.tensorboard import TensorBoardLog

    written = []

    class SummaryWriter:  # records what torch.utils.tensorboard's writer would be asked to write
        def __init__(self, log_dir):
            written.append(("dir", log_dir))

        def add_scalar(self, tag, value, step):
            written.append((tag, float(value), step))

        def add_image(self, tag, image, step, dataformats):
            written.append((tag, image.shape, step, dataformats))

        def flush(self):
            pass

        def close(self):
            written.append(("closed",))

    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", types.SimpleNamespace(SummaryWriter=SummaryWriter))
    log = TensorBoardLog(tmp_path / "run" / "tensorboard")
    fit(TrainConfig(**TINY, epochs=1, epochs_decay=0), tiny_pairs, tmp_path / "run", progress=False,
        report_seconds=0, on_progress=log, on_epoch_end=log)
    log.close()
    tags = [entry[0] for entry in written]
    assert tags[0] == "dir" and written[0][1] == str(tmp_path / "run" / "tensorboard") and tags[-1] == "closed"
    assert [e[2] for e in written if e[0] == "loss/G_L1"] == [1, 2, 3, 4]  # every progress report, by step
    assert {"val/l1", "val/psnr", "epoch_loss/D_real", "speed/images_per_s"} <= set(tags)
    image = next(e for e in written if e[0].startswith("samples"))
    assert image[1] == (2 * 32 + 3 * 2, 3 * 32 + 4 * 2, 3) and image[2:] == (4, "HWC")


def test_the_first_progress_report_comes_after_seconds_not_after_a_whole_interval(monkeypatch):
    from pix2pix_lib.train import loop

    now = [1000.0]
    monkeypatch.setattr(loop.time, "monotonic", lambda: now[0])
    clock = loop.Clock(TrainConfig(**TINY, epochs=1, epochs_decay=0), steps_per_epoch=100)
    now[0] += loop.FIRST_REPORT_S - 1
    assert not clock.report_due(30)
    now[0] += 1  # FIRST_REPORT_S into training: the first curve and grid, not 30 s in
    assert clock.report_due(30)
    now[0] += loop.FIRST_REPORT_S
    assert not clock.report_due(30)  # then every 30 s
    now[0] += 30 - loop.FIRST_REPORT_S
    assert clock.report_due(30)


def test_a_start_that_finds_the_folder_busy_leaves_the_other_runs_files_alone(tiny_pairs, tmp_path, monkeypatch):
    """Two starts into one new folder: the one that loses the lock must not clean up the winner's folder."""
    import contextlib

    from pix2pix_lib.files import mark_ours
    from pix2pix_lib.folders import FolderBusyError
    from pix2pix_lib.runs import RUN_WRITES
    from pix2pix_lib.train import loop

    run = tmp_path / "run"

    @contextlib.contextmanager
    def taken_meanwhile(lock_file, **kwargs):  # the other start made the folder and holds its lock
        run.mkdir()
        mark_ours(run, "training run", writes=RUN_WRITES)
        (run / ".lock").write_text("4242\n")
        raise FolderBusyError(f"{run}: another process (pid 4242) is writing here right now")
        yield

    monkeypatch.setattr(loop, "exclusive_lock", taken_meanwhile)
    with pytest.raises(FolderBusyError, match="pid 4242"):
        fit(TrainConfig(**TINY, epochs=1, epochs_decay=0), tiny_pairs, run, progress=False)
    assert sorted(p.name for p in run.iterdir()) == [".lock", ".made-by-pix2pix_lib"]  # the winner's, untouched


def test_progress_losses_after_the_first_epoch_are_means_of_that_epochs_steps(tiny_pairs, tmp_path, monkeypatch):
    from pix2pix_lib.train import loop

    reports = []
    monkeypatch.setattr(loop.Clock, "report_due", lambda self, every: self.steps in (6, 7))  # 2 steps into epoch 2
    fit(TrainConfig(**TINY, epochs=2, epochs_decay=0, log_every=1), tiny_pairs, tmp_path / "run", progress=False,
        on_progress=reports.append)
    first, second = reports  # epoch 2's steps 2 and 3 (4 steps an epoch)
    steps = read_log(tmp_path / "run" / "steps.csv")
    epoch2 = [row for row in steps if 1 < float(row["epoch"]) <= 2]
    assert first.losses["G_L1"] == pytest.approx(sum(float(r["loss_G_L1"]) for r in epoch2[:2]) / 2, rel=1e-6)
    assert second.losses["G_L1"] == pytest.approx(float(epoch2[2]["loss_G_L1"]), rel=1e-6)
