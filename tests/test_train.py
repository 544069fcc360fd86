"""The trainer: it learns, it resumes exactly, it survives SIGKILL, it stops on NaN, it writes its files."""

import json
import math
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from pix2pix_lib import cli
from pix2pix_lib.config import TrainConfig
from pix2pix_lib.runs import CHECKPOINT, read_log
from pix2pix_lib.train import TrainingState, TrainingDiverged, fit, load_checkpoint

ROOT = Path(__file__).resolve().parents[1]
TINY = dict(image_size=32, ngf=8, ndf=8, patch_size=16, batch_size=2, precision="fp32", seed=3, n_samples=2)


def test_gan_and_l1_training_drives_l1_down_on_two_pairs(tiny_pairs):
    from pix2pix_lib.data.paired import PairedImageDataset

    data = PairedImageDataset(tiny_pairs, "train", image_size=32, flip=False, load_size=32)
    a = torch.stack([data[i]["A"] for i in range(2)])
    b = torch.stack([data[i]["B"] for i in range(2)])
    model = TrainingState.from_config(TrainConfig(**TINY, dropout=False), "cpu")
    first = model.training_step(a, b)["G_L1"]
    for _ in range(250):
        last = model.training_step(a, b)
    assert last["G_L1"] < 0.25 * first, (first, last)
    assert 0 < last["D_real"] < 5 and 0 < last["D_fake"] < 5  # D trained too, and did not blow up
    model.generator.eval()
    with torch.no_grad():
        assert (model.generator(a) - b).abs().mean() < 0.3 * first


def test_fit_learns_the_pairs_better_than_copying_the_sketch(tmp_path):
    # The whole loop (loader, steps, schedule, validation), not only training_step. On the pixels
    # that need paint (l1_changed: the circles' fill) the generator must beat copying the outline.
    from conftest import write_tiny_pairs

    from pix2pix_lib.data.paired import PairedImageDataset
    from pix2pix_lib.metrics import evaluate_predictions

    data = write_tiny_pairs(tmp_path / "pairs", n_train=16, n_val=4)
    history = fit(TrainConfig(**{**TINY, "batch_size": 4, "n_samples": 2}, lr_g=2e-3, lr_d=2e-4, dropout=False,
                              epochs=12, epochs_decay=0), data, tmp_path / "run", progress=False)
    val = PairedImageDataset(data, "val", image_size=32, flip=False)
    copy = evaluate_predictions(lambda a: a, torch.utils.data.DataLoader(val, batch_size=4))
    assert history[-1]["val_l1"] < 0.2 * history[0]["val_l1"], [round(r["val_l1"], 4) for r in history]
    assert history[-1]["val_l1_changed"] < 0.75 * copy["l1_changed"], (history[-1], copy)


def test_max_steps_per_epoch_caps_every_epoch(tiny_pairs, tmp_path):
    from conftest import write_tiny_pairs

    data = write_tiny_pairs(tmp_path / "pairs", n_train=16)
    history = fit(TrainConfig(**TINY, epochs=2, epochs_decay=0, max_steps_per_epoch=3), data, tmp_path / "run",
                  progress=False)
    assert [int(r["step"]) for r in history] == [3, 6]  # 16 pairs at batch 2 would be 8 a pass


def test_l1_only_training_never_steps_the_discriminator():
    model = TrainingState.from_config(TrainConfig(**TINY, use_gan=False), "cpu")
    before = {k: v.clone() for k, v in model.discriminator.state_dict().items()}
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    losses = model.training_step(x, -x)
    assert set(losses) == {"G_gan", "G_L1"} and losses["G_gan"] == 0
    assert all(torch.equal(before[k], v) for k, v in model.discriminator.state_dict().items())
    assert all(p.grad is None for p in model.discriminator.parameters())


def test_validation_runs_in_eval_mode_and_leaves_the_generator_as_it_was():
    from pix2pix_lib.metrics import evaluate_generator
    from pix2pix_lib.models import build_generator

    torch.manual_seed(0)
    g = build_generator(image_size=32, ngf=4).train()  # dropout on, batch statistics
    stats = {k: v.clone() for k, v in g.state_dict().items() if "running" in k}
    batches = [{"A": torch.rand(2, 3, 32, 32) * 2 - 1, "B": torch.rand(2, 3, 32, 32) * 2 - 1}]
    first, second = evaluate_generator(g, batches), evaluate_generator(g, batches)
    assert first == second  # no dropout noise
    assert all(torch.equal(stats[k], g.state_dict()[k]) for k in stats)  # running stats untouched
    assert g.training


def _generator_weights(run: Path) -> dict:
    return torch.load(run / "generator.pt", weights_only=True)["state_dict"]


def _assert_same_weights(x: dict, y: dict):
    assert x.keys() == y.keys()
    for k in x:
        assert torch.equal(x[k], y[k]), k


def test_resume_continues_exactly(tiny_pairs, tmp_path):
    config = TrainConfig(**TINY, epochs=1, epochs_decay=1)
    fit(config, tiny_pairs, tmp_path / "straight", progress=False)

    class Stop(Exception):
        pass

    def stop_after_first_epoch(report):
        raise Stop

    with pytest.raises(Stop):
        fit(config, tiny_pairs, tmp_path / "resumed", progress=False, on_epoch_end=stop_after_first_epoch)
    assert load_checkpoint(tmp_path / "resumed" / CHECKPOINT).epoch == 1
    history = fit(config, tiny_pairs, tmp_path / "resumed", resume=True, progress=False)

    assert [row["epoch"] for row in history] == [1, 2]
    _assert_same_weights(_generator_weights(tmp_path / "straight"), _generator_weights(tmp_path / "resumed"))
    straight, resumed = read_log(tmp_path / "straight" / "log.csv"), read_log(tmp_path / "resumed" / "log.csv")
    assert [r["val_l1"] for r in straight] == [r["val_l1"] for r in resumed]


def test_a_finished_run_extended_with_more_epochs_follows_the_new_schedule(tiny_pairs, tmp_path):
    # 1 epoch + 1 decay epoch leaves lr 0 in the stored optimisers; extending the run to 3 + 1 epochs
    # must train epochs 3 and 4 at the new schedule's lr, not carry on at 0.
    lr = TrainConfig(**TINY).lr_g
    fit(TrainConfig(**TINY, epochs=1, epochs_decay=1), tiny_pairs, tmp_path / "run", progress=False)
    before = _generator_weights(tmp_path / "run")
    history = fit(TrainConfig(**TINY, epochs=3, epochs_decay=1), tiny_pairs, tmp_path / "run",
                  resume=True, progress=False)

    assert [row["lr_g"] for row in history] == pytest.approx([lr, lr / 2, lr, lr / 2])
    after = _generator_weights(tmp_path / "run")
    assert not all(torch.equal(before[k], after[k]) for k in before), "the extra epochs did not train"


def test_existing_run_is_not_overwritten_without_resume(tiny_pairs, tmp_path):
    config = TrainConfig(**TINY, epochs=1, epochs_decay=0)
    fit(config, tiny_pairs, tmp_path / "run", progress=False)
    with pytest.raises(FileExistsError, match="resume"):
        fit(config, tiny_pairs, tmp_path / "run", progress=False)


def test_resume_refuses_settings_that_change_what_is_learned_and_applies_machinery(tiny_pairs, tmp_path):
    run = tmp_path / "run"
    fit(TrainConfig(**TINY, epochs=1, epochs_decay=0), tiny_pairs, run, progress=False)
    with pytest.raises(ValueError, match=r"checkpoint\.pt: cannot resume.*ngf=8 \(asked: 16\).*use_gan=True"):
        fit(TrainConfig(**{**TINY, "ngf": 16}, use_gan=False, epochs=2, epochs_decay=0), tiny_pairs, run,
            resume=True, progress=False)
    assert load_checkpoint(run / CHECKPOINT).epoch == 1  # the refused call changed nothing

    history = fit(TrainConfig(**{**TINY, "precision": "bf16", "n_samples": 1}, epochs=2, epochs_decay=0),
                  tiny_pairs, run, resume=True, progress=False)
    assert [row["epoch"] for row in history] == [1, 2]
    assert load_checkpoint(run / CHECKPOINT).config.precision == "bf16"


def test_cli_resume_continues_with_the_runs_own_settings_and_reports_an_existing_run(tiny_pairs, tmp_path, capsys):
    run = tmp_path / "run"
    args = ["train", "--data", str(tiny_pairs), "--out", str(run), "--image-size", "32", "--ngf", "8", "--ndf", "8",
            "--patch-size", "16", "--epochs", "1", "--epochs-decay", "0", "--precision", "fp32", "--quiet"]
    assert cli.main(args) == 0
    assert cli.main(args) == 2  # one line, no traceback
    err = capsys.readouterr().err
    assert "already holds a run" in err and "--resume continues it" in err and "resume=True" not in err
    with pytest.raises(FileExistsError, match="already holds a run.*resume it to continue"):  # the Python API
        fit(TrainConfig(image_size=32, ngf=8, ndf=8, patch_size=16, epochs=1, epochs_decay=0), tiny_pairs, run,
            progress=False)
    # Only --epochs given: the run's 32 px / ngf 8 settings are kept, not the quick preset's.
    assert cli.main(["train", "--data", str(tiny_pairs), "--out", str(run), "--resume", "--epochs", "2", "--quiet"]) == 0
    model = load_checkpoint(run / CHECKPOINT)
    assert (model.epoch, model.config.ngf, model.config.image_size) == (2, 8, 32)


def test_auto_precision_on_cuda_follows_the_compute_capability(monkeypatch):
    from pix2pix_lib.runtime import auto_precision

    for capability, expected in (((7, 5), "fp16"), ((8, 0), "bf16"), ((9, 0), "bf16")):  # T4, A100, H100
        monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None, c=capability: c)
        assert auto_precision(torch.device("cuda")) == expected


def test_run_folder_contents(tiny_pairs, tmp_path):
    from PIL import Image

    history = fit(TrainConfig(**TINY, epochs=1, epochs_decay=1), tiny_pairs, tmp_path / "run", progress=False)
    run = tmp_path / "run"
    for name in ("checkpoint.pt", "generator.pt", "best_generator.pt", "log.csv", "samples/epoch_002.png"):
        assert (run / name).is_file(), name
    grid = Image.open(run / "samples" / "epoch_001.png")
    assert grid.size == (3 * 32 + 4 * 2, 2 * 32 + 3 * 2)  # 3 columns (A | G(A) | B) x 2 samples, 2 px padding
    assert set(history[0]) >= {"loss_G_L1", "loss_D_real", "val_l1", "val_psnr", "val_ssim", "images_per_s"}
    assert history[0]["lr_g"] == pytest.approx(2e-4) and history[1]["lr_g"] == pytest.approx(1e-4)  # linear decay
    best = torch.load(run / "best_generator.pt", weights_only=True)
    assert best["card"]["metrics"]["l1"] == pytest.approx(min(r["val_l1"] for r in history))
    assert best["card"]["licence"] == {}  # the tiny pairs state no licence


def test_generator_files_carry_the_licence_of_their_training_data(tiny_pairs, tmp_path):
    manifest = {"license": "CC BY-SA 4.0", "license_url": "https://creativecommons.org/licenses/by-sa/4.0/",
                "attribution": "Pictures by Someone", "changes": "rendered to PNG", "counts": {"train": 8}}
    (tiny_pairs / "manifest.json").write_text(json.dumps(manifest))
    fit(TrainConfig(**TINY, epochs=1, epochs_decay=0), tiny_pairs, tmp_path / "run", progress=False)
    expected = {k: manifest[k] for k in ("license", "license_url", "attribution", "changes")}
    for name in ("generator.pt", "best_generator.pt"):
        assert torch.load(tmp_path / "run" / name, weights_only=True)["card"]["licence"] == expected
    assert cli.main(["export", str(tmp_path / "run" / "best_generator.pt"), "-o", str(tmp_path / "g.pt"), "--half"]) == 0
    assert torch.load(tmp_path / "g.pt", weights_only=True)["card"]["licence"] == expected  # export keeps it


def test_non_finite_loss_stops_with_clear_error_and_keeps_last_checkpoint(tiny_pairs, tmp_path):
    from pix2pix_lib.data.loaders import make_datasets

    # No precise BN: it reads the training set too, and would meet the poison one epoch early.
    config = TrainConfig(**TINY, epochs=2, epochs_decay=0, precise_bn_batches=0)
    train_set, val_set = make_datasets(config, tiny_pairs)

    class Poisoned(torch.utils.data.Dataset):
        calls = 0

        def __len__(self):
            return len(train_set)

        def __getitem__(self, i):
            Poisoned.calls += 1
            item = dict(train_set[i])
            if Poisoned.calls > len(train_set):  # the second epoch gets NaN inputs
                item["A"] = torch.full_like(item["A"], float("nan"))
            return item

    with pytest.raises(TrainingDiverged, match="non-finite loss"):
        fit(config, tiny_pairs, tmp_path / "run", progress=False, datasets=(Poisoned(), val_set))
    assert load_checkpoint(tmp_path / "run" / CHECKPOINT).epoch == 1


def test_corrupt_checkpoint_is_reported_with_its_path(tmp_path):
    bad = tmp_path / "checkpoint.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match=str(bad)):
        load_checkpoint(bad)
    torch.save({"format": "something-else"}, bad)
    with pytest.raises(ValueError, match="not a pix2pix training checkpoint"):
        load_checkpoint(bad)


def test_bf16_step_runs_on_cpu(tiny_pairs):
    model = TrainingState.from_config(TrainConfig(**{**TINY, "precision": "bf16"}), "cpu")
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    losses = model.training_step(x, x)
    assert all(torch.isfinite(torch.tensor(v)) for v in losses.values())


def test_fp16_steps_go_through_a_grad_scaler_that_the_checkpoint_keeps(tiny_pairs, tmp_path):
    # CUDA's fallback below compute capability 8; CPU autocast runs the same code path here.
    fit(TrainConfig(**{**TINY, "precision": "fp16"}, epochs=1, epochs_decay=0), tiny_pairs, tmp_path / "run",
        progress=False)
    state = torch.load(tmp_path / "run" / CHECKPOINT, weights_only=True)
    assert state["scaler"] and state["scaler"]["scale"] > 0
    model = load_checkpoint(tmp_path / "run" / CHECKPOINT, "cpu")
    assert model.scaler is not None and model.scaler.get_scale() == state["scaler"]["scale"]
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    assert all(math.isfinite(v) for v in model.training_step(x, x).values())


def test_channels_last_changes_the_layout_not_the_numbers():
    x, y = torch.rand(2, 3, 32, 32) * 2 - 1, torch.rand(2, 3, 32, 32) * 2 - 1
    losses = {}
    for channels_last in (False, True):
        torch.manual_seed(0)
        model = TrainingState.from_config(TrainConfig(**TINY, dropout=False, channels_last=channels_last), "cpu")
        conv = model.generator.encoder[0][0].weight
        assert conv.is_contiguous(memory_format=torch.channels_last) == channels_last
        losses[channels_last] = [model.training_step(model.to_device(x), model.to_device(y)) for _ in range(2)]
    for before, after in zip(losses[False], losses[True]):
        assert after == pytest.approx(before, rel=1e-4)


@pytest.mark.slow
def test_compiled_networks_train_like_eager_ones_and_checkpoint_plain_weights(tmp_path):
    from pix2pix_lib.train import save_checkpoint

    if not (shutil.which("g++") or shutil.which("c++")):
        reason = "torch.compile on CPU needs a C++ compiler (g++)"
        if os.environ.get("CI"):  # the course machines have g++: CI must run this
            pytest.fail(f"CI must run the torch.compile test, but {reason} is missing")
        pytest.skip(reason)

    x, y = torch.rand(2, 3, 32, 32) * 2 - 1, torch.rand(2, 3, 32, 32) * 2 - 1
    models, losses = {}, {}
    for compiled in (False, True):  # ~25 s: inductor compiles both networks' forward and backward
        torch.manual_seed(0)
        models[compiled] = TrainingState.from_config(TrainConfig(**TINY, dropout=False, compile=compiled), "cpu")
        losses[compiled] = [models[compiled].training_step(x, y) for _ in range(2)]
    for eager, compiled in zip(losses[False], losses[True]):
        assert compiled == pytest.approx(eager, rel=1e-3)
    # Module.compile() works in place: the checkpoint has the eager names and loads without compiling.
    save_checkpoint(models[True], tmp_path / CHECKPOINT)
    restored = load_checkpoint(tmp_path / CHECKPOINT, "cpu", compile=False).generator.state_dict()
    assert restored.keys() == models[False].generator.state_dict().keys()
    for name, value in models[True].generator.state_dict().items():
        assert torch.equal(restored[name], value), name


def _train_command(data, out, *extra):
    return [sys.executable, "-m", "pix2pix_lib", "train", "--preset", "quick", "--data", str(data),
            "--out", str(out), "--image-size", "32", "--ngf", "8", "--ndf", "8", "--patch-size", "16",
            "--batch-size", "1", "--precision", "fp32", "--epochs", "2", "--epochs-decay", "0", "--quiet", *extra]


KILL_AT_STEP = """
import os, signal, sys
import pix2pix_lib.train as train
from pix2pix_lib.cli import main

kill_at, real_step = int(sys.argv.pop(1)), train.TrainingState.training_step

def training_step(self, real_a, real_b):
    if self.step == kill_at:
        os.kill(os.getpid(), signal.SIGKILL)  # no cleanup, no flush: like a power cut
    return real_step(self, real_a, real_b)

train.TrainingState.training_step = training_step
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.slow
def test_sigkill_mid_epoch_then_resume_matches_uninterrupted_run(tmp_path):
    from conftest import write_tiny_pairs

    data = write_tiny_pairs(tmp_path / "pairs", n_train=48)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    subprocess.run(_train_command(data, tmp_path / "straight"), check=True, env=env, cwd=ROOT, timeout=300)

    # The same command, SIGKILLed by itself at step 60: 12 steps into epoch 2 (48 steps an epoch),
    # whatever the machine's speed.
    run, wrapper = tmp_path / "killed", tmp_path / "kill_at_step.py"
    wrapper.write_text(KILL_AT_STEP)
    command = _train_command(data, run)
    killed = subprocess.run([command[0], str(wrapper), "60", *command[3:]], env=env, cwd=ROOT, timeout=300)
    assert killed.returncode == -signal.SIGKILL
    assert load_checkpoint(run / CHECKPOINT).epoch == 1

    subprocess.run(_train_command(data, run, "--resume"), check=True, env=env, cwd=ROOT, timeout=300)
    _assert_same_weights(_generator_weights(tmp_path / "straight"), _generator_weights(run))


def test_cli_train_writes_a_run(tiny_pairs, tmp_path, capsys):
    code = cli.main(["train", "--data", str(tiny_pairs), "--out", str(tmp_path / "run"), "--image-size", "32",
                     "--ngf", "8", "--ndf", "8", "--epochs", "1", "--epochs-decay", "0", "--batch-size", "4",
                     "--precision", "fp32", "--quiet"])
    assert code == 0
    assert "best validation L1" in capsys.readouterr().out
    assert TrainConfig.from_dict(load_checkpoint(tmp_path / "run" / CHECKPOINT).config.to_dict()).ngf == 8
    assert cli.main(["train", "--data", str(tmp_path / "missing"), "--out", str(tmp_path / "r2"), "--quiet"]) == 2


@pytest.mark.parametrize("flags, expected", [("fpu sse avx2 avx512f", "fp32"), ("fpu avx512f avx512_bf16", "bf16"),
                                             ("fpu amx_tile amx_bf16", "bf16")])
def test_auto_precision_on_cpu_follows_native_bf16(monkeypatch, tmp_path, flags, expected):
    import pix2pix_lib.runtime as runtime

    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(f"processor : 0\nflags : {flags}\n")
    real_path = runtime.Path
    monkeypatch.setattr(runtime, "Path", lambda p: cpuinfo if p == "/proc/cpuinfo" else real_path(p))
    assert runtime.auto_precision(torch.device("cpu")) == expected
    model = TrainingState.from_config(TrainConfig(**{**TINY, "precision": "auto"}), "cpu")
    assert model.config.precision == expected  # resolved once, stored in the checkpoint's config
    with pytest.raises(ValueError, match="precision must be"):
        TrainConfig(precision="fp8")


def test_make_datasets_augments_training_pairs_only(tiny_pairs):
    from pix2pix_lib.data.sketch_augment import DoodleAugment
    from pix2pix_lib.data.loaders import make_datasets

    train, val = make_datasets(TrainConfig(**TINY, augment="doodle"), tiny_pairs)
    assert isinstance(train.augment, DoodleAugment) and val.augment is None
    assert train.flip and not val.flip and val.load_size == val.image_size  # jitter on train only
    with pytest.raises(ValueError, match="unknown augment 'blur'"):
        make_datasets(TrainConfig(**TINY, augment="blur"), tiny_pairs)


def test_bad_settings_are_refused_with_their_names():
    from pix2pix_lib.config import preset

    with pytest.raises(ValueError, match="unknown preset 'fast'"):
        preset("fast")
    with pytest.raises(ValueError, match="image_size must be a power of two"):
        TrainConfig(image_size=100)
    with pytest.raises(ValueError, match="direction must be"):
        TrainConfig(direction="AtoC")
    with pytest.raises(ValueError, match=r"a 70x70 PatchGAN needs image_size >= 32, got 16"):
        TrainConfig(image_size=16)
    with pytest.raises(ValueError, match=r"patch_size must be one of \[1, 16, 70, 286\]"):
        TrainConfig(patch_size=32)
    with pytest.raises(ValueError, match=r"unknown TrainConfig fields: \['ngff'\]"):
        TrainConfig().replace(ngff=8)


def test_ctrl_c_on_the_command_line_exits_130(monkeypatch, capsys, tmp_path):
    import pix2pix_lib.train as train

    monkeypatch.chdir(tmp_path)  # nothing lands in the checkout, whatever the command gets to write

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(train, "fit", interrupted)
    assert cli.main(["train", "--data", "d", "--out", "o", "--quiet"]) == 130
    assert "interrupted" in capsys.readouterr().err


def test_the_original_projects_preset_is_named_so_and_the_old_name_still_works():
    from pix2pix_lib.config import preset

    assert preset("original").lr_d == 5e-5 and preset("original").batch_size == 4
    with pytest.warns(DeprecationWarning, match="now called 'original'"):
        assert preset("seed", seed=1) == preset("original", seed=1)


def test_every_train_option_says_what_it_means_and_each_presets_value():
    import dataclasses

    parser = cli.build_parser()
    train_parser = parser._subparsers._group_actions[0].choices["train"]
    helps = {a.dest: a.help for a in train_parser._actions}
    from pix2pix_lib.config import field_notes

    notes = field_notes()
    for f in dataclasses.fields(TrainConfig):
        text = helps[f.name]
        assert notes.get(f.name) and text.replace("%%", "%").startswith(notes[f.name]), f"--{f.name}: no explanation"
        assert all(f"{name}: " in text for name in ("paper", "original", "quick")), text
    assert "quick: 128" in helps["image_size"] and "original: 5e-05" in helps["lr_d"]
