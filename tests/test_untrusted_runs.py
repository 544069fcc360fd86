"""Run folders a user filled, killed writes, SIGTERM, and logs that must agree with the checkpoint (issue 20).

Each test fails on the code before the fix it checks: the folder rule in train.check_run_folder, the
signal handling of the command line, the clean-up of killed writes, the logs rebuilt at a resume.
"""

from __future__ import annotations

import os
import pickle
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from pix2pix_lib import runs, train, weights
from pix2pix_lib.cli import main
from pix2pix_lib.config import TrainConfig
from pix2pix_lib.models import build_generator

ROOT = Path(__file__).resolve().parents[1]
TINY = dict(image_size=32, ngf=8, ndf=8, patch_size=16, batch_size=2, precision="fp32", seed=3, n_samples=2,
            precise_bn_batches=2)
TINY_ARGS = ["--image-size", "32", "--ngf", "8", "--ndf", "8", "--patch-size", "16", "--batch-size", "2",
             "--precision", "fp32", "--precise-bn-batches", "2", "--epochs", "1", "--epochs-decay", "0", "--quiet"]


def _snapshot(folder: Path) -> dict:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _error_line(capsys) -> str:
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and "Traceback" not in err, err
    return lines[0]


@pytest.fixture
def one_epoch_run(tiny_pairs, tmp_path):
    run = tmp_path / "run"
    train.fit(TrainConfig(**TINY, epochs=1, epochs_decay=0), tiny_pairs, run, progress=False)
    return run


# --- item 1: a folder of someone's files is no run, even with a checkpoint copied into it ----------
def test_a_copied_checkpoint_does_not_make_a_folder_of_user_files_a_run(tiny_pairs, one_epoch_run, tmp_path,
                                                                       capsys):
    mine = tmp_path / "mine"
    (mine / "samples").mkdir(parents=True)
    (mine / "log.csv").write_text("my spreadsheet")
    (mine / "generator.pt").write_bytes(b"my own model")
    (mine / "samples" / "epoch_001.png").write_bytes(b"my drawing")
    shutil.copy(one_epoch_run / runs.CHECKPOINT, mine / runs.CHECKPOINT)
    before = _snapshot(mine)
    for resume in (["--resume"], ["--resume", str(mine / runs.CHECKPOINT)]):
        assert main(["train", "--data", str(tiny_pairs), "--out", str(mine), *resume, "--epochs", "2", "--quiet"]) == 2
        line = _error_line(capsys)
        assert "no run folder this library made" in line and f"--resume {mine / runs.CHECKPOINT} --out" in line
        assert _snapshot(mine) == before and sorted(p.name for p in mine.iterdir()) == sorted(
            ["samples", "log.csv", "generator.pt", runs.CHECKPOINT])  # no marker, no lock left
    # The way the message names: continue that checkpoint in a new folder; the folder it came from stays as it is.
    new = tmp_path / "continued"
    assert main(["train", "--data", str(tiny_pairs), "--out", str(new), "--resume", str(mine / runs.CHECKPOINT),
                 "--epochs", "2", "--quiet"]) == 0
    assert f"at epoch 2: {new / runs.BEST_GENERATOR}" in capsys.readouterr().out
    assert _snapshot(mine) == before
    assert train.load_checkpoint(new / runs.CHECKPOINT).epoch == 2
    assert [row["epoch"] for row in runs.read_log(new / runs.LOG)] == [1, 2]  # the copied history comes along
    assert (new / runs.BEST_GENERATOR).is_file() and (new / "samples" / "epoch_002.png").is_file()


def test_a_new_run_refuses_an_unmarked_folder_holding_only_a_checkpoint(tiny_pairs, one_epoch_run, tmp_path):
    bare = tmp_path / "bare"
    bare.mkdir()
    shutil.copy(one_epoch_run / runs.CHECKPOINT, bare / runs.CHECKPOINT)
    with pytest.raises(runs.RefusedError, match="no run folder this library made"):
        train.fit(TrainConfig(**TINY, epochs=2, epochs_decay=0), tiny_pairs, bare, resume="auto", progress=False)
    assert sorted(p.name for p in bare.iterdir()) == [runs.CHECKPOINT]


def test_a_run_folder_lists_what_training_writes_and_a_users_file_is_not_among_it(tiny_pairs, one_epoch_run):
    from pix2pix_lib import files

    (one_epoch_run / "NOTES.txt").write_text("mine")
    (one_epoch_run / "samples" / "my_drawing.png").write_bytes(b"mine")
    survey = files.audit(one_epoch_run, "training run")
    assert {runs.CHECKPOINT, runs.LOG, runs.BEST_GENERATOR, "samples/epoch_001.png", "verdicts/epoch_001.pt"} <= set(
        survey.ours)
    assert sorted(survey.extras) == ["NOTES.txt", "samples/my_drawing.png"]
    train.fit(TrainConfig(**TINY, epochs=2, epochs_decay=0), tiny_pairs, one_epoch_run, resume=True, progress=False)
    assert (one_epoch_run / "NOTES.txt").read_text() == "mine"
    assert (one_epoch_run / "samples" / "my_drawing.png").read_bytes() == b"mine"


# --- item 7: a dataset is not rebuilt under a training that reads it ---------------------------------
def test_a_rebuild_of_the_dataset_is_refused_while_a_training_reads_it(tiny_pairs, tmp_path):
    from pix2pix_lib import files

    refused = []

    def try_a_rebuild(report):
        with pytest.raises(files.FolderBusyError, match="is reading this dataset"):
            with files.no_readers(tiny_pairs):
                pass
        refused.append(report.epoch)

    train.fit(TrainConfig(**TINY, epochs=1, epochs_decay=0), tiny_pairs, tmp_path / "run", progress=False,
              on_epoch_end=try_a_rebuild)
    assert refused == [1]
    with files.no_readers(tiny_pairs):  # the training is over: the folder is free again
        pass


# --- item 3: what killed writes leave is cleared at the next start, and nothing else ---------------
def test_killed_writes_are_cleared_at_a_resume_and_nothing_else(tiny_pairs, one_epoch_run):
    run = one_epoch_run
    ours = [".checkpoint.pt.k3j4h5g6.tmp", ".generator.pt.abcd_123.tmp", ".best_generator.pt.zzzzzzzz.tmp",
            ".log.csv.a1b2c3d4.tmp", ".steps.csv.00000000.tmp", "..made-by-pix2pix_lib.qwertyui.tmp",
            "samples/.epoch_001.png.abcdefgh.tmp", "verdicts/.epoch_001.pt.hgfedcba.tmp"]
    theirs = ["notes.txt", ".checkpoint.pt.ABCDEFGH.tmp", ".checkpoint.pt.abc.tmp", ".notes.txt.abcdefgh.tmp",
              ".checkpoint.pt.abcdefgh.tmp.keep", "samples/.notes.png.abcdefgh.tmp", "samples/my_drawing.png",
              "other/.checkpoint.pt.abcdefgh.tmp"]
    for name in ours + theirs:
        (run / name).parent.mkdir(exist_ok=True)
        (run / name).write_bytes(b"x" * 10)
    (run / ".generator.pt.dirdirdi.tmp").mkdir()  # a folder with our name pattern: not a file we wrote
    # The finished run resumed as it is: nothing to train, but the start clears what killed writes left.
    assert train.fit(TrainConfig(**TINY, epochs=1, epochs_decay=0), tiny_pairs, run, resume=True, progress=False)
    assert [name for name in ours if (run / name).exists()] == []
    assert [name for name in theirs if not (run / name).is_file()] == []
    assert (run / ".generator.pt.dirdirdi.tmp").is_dir()


# --- item 4: the logs agree with the checkpoint after a resume --------------------------------------
def test_steps_csv_after_a_resume_is_the_file_a_straight_run_writes(tiny_pairs, tmp_path):
    config = TrainConfig(**TINY, epochs=2, epochs_decay=0, log_every=3)
    train.fit(config, tiny_pairs, tmp_path / "straight", progress=False)
    train.fit(config.replace(epochs=1), tiny_pairs, tmp_path / "resumed", progress=False)
    train.fit(config, tiny_pairs, tmp_path / "resumed", resume=True, progress=False)
    straight = (tmp_path / "straight" / runs.STEPS).read_text()
    assert (tmp_path / "resumed" / runs.STEPS).read_text() == straight
    assert [line.split(",")[0] for line in straight.splitlines()[1:]] == ["3", "4", "7", "8"]  # integers stay integers


def test_a_run_killed_between_its_checkpoint_and_its_log_gets_the_row_back(tiny_pairs, tmp_path, monkeypatch):
    run, config = tmp_path / "run", TrainConfig(**TINY, epochs=2, epochs_decay=0)
    real_write_log = runs.write_log

    def killed_before_the_second_row(path, history):
        if path.name == runs.LOG and len(history) == 2:
            raise KeyboardInterrupt  # the checkpoint of epoch 2 is on disk, its log row is not
        real_write_log(path, history)

    monkeypatch.setattr(train.run_folder, "write_log", killed_before_the_second_row)  # where the loop writes it
    with pytest.raises(KeyboardInterrupt):
        train.fit(config, tiny_pairs, run, progress=False)
    monkeypatch.undo()
    assert len(runs.read_log(run / runs.LOG)) == 1 and train.load_checkpoint(run / runs.CHECKPOINT).epoch == 2
    history = train.fit(config, tiny_pairs, run, resume=True, progress=False)  # finished: nothing to train
    assert [row["epoch"] for row in runs.read_log(run / runs.LOG)] == [1, 2]
    assert runs.read_log(run / runs.LOG)[1]["val_l1"] == pytest.approx(history[1]["val_l1"])


def test_an_unreadable_steps_log_is_one_line_naming_it(tiny_pairs, one_epoch_run, capsys):
    (one_epoch_run / runs.STEPS).write_text("step,epoch\nnot,numbers\n")
    assert main(["train", "--data", str(tiny_pairs), "--out", str(one_epoch_run), "--resume", "--epochs", "2",
                 "--quiet"]) == 2
    assert f"{one_epoch_run / runs.STEPS}: not a steps log" in _error_line(capsys)


# --- item 5: an option that would change nothing is refused -----------------------------------------
def test_generate_refuses_a_seed_without_paper_mode(tmp_path, capsys):
    from PIL import Image, ImageDraw

    torch.manual_seed(0)
    g = weights.save_generator(tmp_path / "g.pt", build_generator(image_size=32, ngf=4),
                               TrainConfig(image_size=32, ngf=4).to_dict())
    sketch = Image.new("L", (64, 64), 255)
    ImageDraw.Draw(sketch).ellipse([16, 16, 48, 48], outline=0, width=3)
    sketch.save(tmp_path / "s.png")
    args = ["generate", str(tmp_path / "s.png"), "-o", str(tmp_path / "out.png"), "--weights", str(g), "--seed", "3"]
    assert main(args) == 2
    assert "--mode paper" in _error_line(capsys) and not (tmp_path / "out.png").exists()
    assert main([*args, "--mode", "paper"]) == 0 and (tmp_path / "out.png").is_file()


# --- item 6: a resume reads its checkpoint once, checked, before the first step ---------------------
def test_a_cli_resume_reads_the_checkpoint_once_before_the_first_step(tiny_pairs, one_epoch_run, monkeypatch):
    events = []
    real_load, real_step = weights.load_plain, train.TrainingState.training_step

    def load_plain(path, *args, **kwargs):
        if Path(path).name == runs.CHECKPOINT:
            events.append("read")
        return real_load(path, *args, **kwargs)

    def training_step(self, *args):
        events.append("step")
        return real_step(self, *args)

    monkeypatch.setattr(train.checkpoint, "load_plain", load_plain)  # where checkpoints are read
    monkeypatch.setattr(train.TrainingState, "training_step", training_step)
    assert main(["train", "--data", str(tiny_pairs), "--out", str(one_epoch_run), "--resume", "--epochs", "2",
                 "--quiet"]) == 0
    assert events[0] == "read" and events.count("read") == 1 and events.count("step") == 4


def test_a_checkpoint_with_rows_of_the_wrong_type_is_refused_before_any_training(tiny_pairs, one_epoch_run,
                                                                                  capsys):
    state = torch.load(one_epoch_run / runs.CHECKPOINT, weights_only=True)
    state["history"] = ["three"]
    torch.save(state, one_epoch_run / runs.CHECKPOINT)
    before = _snapshot(one_epoch_run)
    assert main(["train", "--data", str(tiny_pairs), "--out", str(one_epoch_run), "--resume", "--epochs", "3",
                 "--quiet"]) == 2
    assert "history" in _error_line(capsys)
    assert _snapshot(one_epoch_run) == before  # no epoch trained, nothing rewritten


# --- item 8: names printed as one line; files read as plain tensors -------------------------------
def test_a_file_name_with_a_terminal_escape_stays_one_printable_line(tiny_pairs, tmp_path, capsys):
    odd = tmp_path / "run\x1b[2J\nnext"
    odd.mkdir()
    (odd / "notes.txt").write_text("mine")
    assert main(["train", "--data", str(tiny_pairs), "--out", str(odd), *TINY_ARGS]) == 2
    line = _error_line(capsys)
    assert "\x1b" not in line and "\\x1b[2J\\nnext" in line and line.isprintable()


class _Payload:
    def __reduce__(self):
        return (print, ("ran code",))


def test_verdicts_are_read_as_plain_tensors_only(one_epoch_run):
    assert runs.read_verdicts(one_epoch_run)[0]["real"].dtype == torch.float16
    bad = one_epoch_run / runs.VERDICTS / "epoch_002.pt"
    bad.write_bytes(pickle.dumps(_Payload()))
    with pytest.raises(ValueError, match=r"epoch_002\.pt: not a"):
        runs.read_verdicts(one_epoch_run)


# --- item 2: SIGTERM and Ctrl-C, in real processes ---------------------------------------------------
def _command(data: Path, out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "pix2pix_lib", "train", "--data", str(data), "--out", str(out), "--image-size", "32",
            "--ngf", "8", "--ndf", "8", "--patch-size", "16", "--batch-size", "1", "--precision", "fp32",
            "--epochs", "1000", "--epochs-decay", "0", "--max-steps-per-epoch", "2", "--max-val-batches", "1",
            "--precise-bn-batches", "1", "--n-samples", "1", "--quiet", *extra]


def _wait_for(condition, process: subprocess.Popen, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


@pytest.mark.parametrize("who, workers", [("the process", "0"), ("its process group, workers too", "1")])
def test_sigterm_stops_training_in_one_line_with_exit_143_and_the_checkpoint_whole(tiny_pairs, tmp_path, who,
                                                                                   workers):
    run = tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen(_command(tiny_pairs, run, "--num-workers", workers), cwd=ROOT, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        _wait_for((run / runs.CHECKPOINT).is_file, process)
        time.sleep(0.2)  # into the next epoch (or its writes)
        if who == "the process":
            process.send_signal(signal.SIGTERM)  # docker stop
        else:
            os.killpg(process.pid, signal.SIGTERM)  # Slurm: every process of the job, DataLoader workers too
        _, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    assert process.returncode == 143, err
    assert [line for line in err.splitlines() if line.strip()] == ["terminated (SIGTERM)"], err
    assert train.load_checkpoint(run / runs.CHECKPOINT).epoch >= 1
    assert [p.name for p in run.rglob("*") if p.name.endswith(".tmp") or p.name == ".lock"] == []


def _loading_torch(pid: int) -> bool:
    try:
        return "libtorch" in Path(f"/proc/{pid}/maps").read_text()
    except OSError:
        return False


@pytest.mark.skipif(not Path("/proc/self/maps").is_file(), reason="needs /proc to see the start-up")
@pytest.mark.parametrize("signum, code, line", [(signal.SIGINT, 130, "interrupted"),
                                                (signal.SIGTERM, 143, "terminated (SIGTERM)")])
def test_a_signal_during_start_up_is_one_line_not_an_import_traceback(tmp_path, signum, code, line):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen(_command(tmp_path / "data", tmp_path / "run"), cwd=ROOT, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _wait_for(lambda: _loading_torch(process.pid), process, seconds=60)  # torch is loading: still starting up
    process.send_signal(signum)
    _, err = process.communicate(timeout=60)
    assert (process.returncode, err) == (code, line + "\n")
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("sub", ["samples", "verdicts"])
def test_a_link_where_a_run_writes_its_samples_is_refused_and_its_target_untouched(tmp_path, sub):
    from pix2pix_lib.files import RefusedError, mark_ours

    run, theirs = tmp_path / "run", tmp_path / "their_pictures"
    run.mkdir(), theirs.mkdir()
    (theirs / "epoch_005.png").write_text("MINE")
    mark_ours(run, "training run", writes=runs.RUN_WRITES)
    (run / sub).symlink_to(theirs, target_is_directory=True)
    with pytest.raises(RefusedError, match=f"a link or file where the run writes its {sub}/"):
        train.check_run_folder(run, resume="auto")
    assert (theirs / "epoch_005.png").read_text() == "MINE"
