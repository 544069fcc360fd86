"""download and download-model meet files they did not make, and files that lie (issue 20).

Everything is served by a local HTTP server (test_download's) from files the tests build; the
reference's weights are random tensors in its layout (test_pretrained's).
"""

from __future__ import annotations

import io
import os
import random
import signal
import sys
import threading
import time
import types
import zipfile

import pytest
import torch

from pix2pix_lib import pretrained
from pix2pix_lib.cli import main
from pix2pix_lib.data import download_dataset
from pix2pix_lib.data.download import download_carvana
from test_download import PAYLOAD, _good, _Server, _tar_bytes
from test_pretrained import _reference_state


@pytest.fixture
def server():
    s = _Server()
    yield s
    s.close()


def _names(folder):
    return sorted(p.name for p in folder.iterdir())


def _interrupted_download(server, root, name="maps", keep=1000):
    """A download of `name` cut off after `keep` bytes: the .part (and marker) it leaves."""
    data = _tar_bytes(_good(name))
    server.files[f"{name}.tar.gz"], server.short_by = data, len(data) - keep
    with pytest.raises(RuntimeError, match="again to resume"):
        download_dataset(name, root, base_url=server.url, progress=False)
    server.short_by = 0
    return data


# --- 1. only what this command downloaded is ever deleted ---------------------------------------------
def test_a_browsers_unfinished_download_at_the_part_name_is_left_as_it_is(server, tmp_path):
    data = _tar_bytes(_good("maps"))
    server.files["maps.tar.gz"] = data
    part = tmp_path / "maps.tar.gz.part"
    part.write_bytes(data[:1000])  # the right bytes, even: still not ours to append to or delete
    with pytest.raises(OSError, match=r"maps\.tar\.gz\.part: was not downloaded by this command.*left as it is"):
        download_dataset("maps", tmp_path, base_url=server.url, progress=False)
    assert part.read_bytes() == data[:1000] and _names(tmp_path) == ["maps.tar.gz.part"]
    assert server.requests == []


def test_our_part_replaced_by_another_file_is_no_longer_ours(server, tmp_path):
    data = _interrupted_download(server, tmp_path)
    part = tmp_path / "maps.tar.gz.part"
    copy = part.read_bytes()
    part.unlink()
    part.write_bytes(copy)  # the same bytes in another file (a copy): not the file we wrote
    with pytest.raises(OSError, match="was not downloaded by this command"):
        download_dataset("maps", tmp_path, base_url=server.url, progress=False)
    assert part.read_bytes() == data[:1000]


def test_a_part_killed_after_its_last_mark_is_still_ours_and_resumes(server, tmp_path):
    data = _interrupted_download(server, tmp_path)  # marked at 1000 bytes
    with open(tmp_path / "maps.tar.gz.part", "ab") as f:
        f.write(data[1000:1500])  # written after the last mark, then kill -9
    out = download_dataset("maps", tmp_path, base_url=server.url, progress=False)
    assert server.requests[-1].get("Range") == "bytes=1500-"
    assert (out / "train" / "1.jpg").read_bytes() == PAYLOAD and _names(tmp_path) == ["maps"]


def test_a_users_incomplete_archive_is_refused_and_kept(server, tmp_path, capsys):
    data = _tar_bytes(_good())
    server.files["facades.tar.gz"] = data
    archive = tmp_path / "facades.tar.gz"
    archive.write_bytes(data[: len(data) // 2])  # a half-finished browser download, renamed
    assert main(["download", "facades", "--root", str(tmp_path), "--base-url", server.url]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not a complete facades archive and was not downloaded by this command" in err
    assert "left as it is" in err and "delete it" not in err
    assert archive.read_bytes() == data[: len(data) // 2] and _names(tmp_path) == ["facades.tar.gz"]


def test_a_users_complete_archive_is_unpacked_and_kept(server, tmp_path):
    data = _tar_bytes(_good())
    (tmp_path / "facades.tar.gz").write_bytes(data)
    out = download_dataset("facades", tmp_path, base_url=server.url, progress=False)
    assert (out / "train" / "1.jpg").read_bytes() == PAYLOAD and server.requests == []
    assert (tmp_path / "facades.tar.gz").read_bytes() == data
    assert _names(tmp_path) == ["facades", "facades.tar.gz"]


def test_our_archive_is_reused_and_deleted_but_not_once_the_user_replaced_it(server, tmp_path):
    data = _tar_bytes(_good())
    server.files["facades.tar.gz"] = data
    (tmp_path / "facades").mkdir()
    (tmp_path / "facades" / "notes.txt").write_text("mine")  # the target is refused: the download stays
    with pytest.raises(OSError, match="left as it is"):
        download_dataset("facades", tmp_path, base_url=server.url, progress=False)
    archive = tmp_path / "facades.tar.gz"
    assert archive.read_bytes() == data
    mine = _tar_bytes(_good() + [("facades/val/3.jpg", b"z" * 10)])
    archive.unlink()
    archive.write_bytes(mine)  # the user's own archive now stands at the name
    (tmp_path / "facades" / "notes.txt").rename(tmp_path / "notes.txt")
    (tmp_path / "facades").rmdir()
    n = len(server.requests)
    out = download_dataset("facades", tmp_path, base_url=server.url, progress=False)
    assert (out / "val" / "3.jpg").exists() and len(server.requests) == n
    assert archive.read_bytes() == mine  # not ours: kept


def test_our_corrupt_download_is_deleted_and_the_message_says_so(server, tmp_path):
    data = _tar_bytes(_good())
    server.files["facades.tar.gz"] = data[: len(data) // 2]
    with pytest.raises(RuntimeError) as caught:
        download_dataset("facades", tmp_path, base_url=server.url, progress=False)
    assert "the download is deleted: run the same command again" in str(caught.value)
    assert "delete it" not in str(caught.value) and list(tmp_path.iterdir()) == []


# --- 2. links and special files at the names this command writes ------------------------------------
@pytest.mark.parametrize("name", ["maps.tar.gz.part", "maps.tar.gz"])
def test_a_link_at_a_download_name_is_refused_and_its_target_untouched(server, tmp_path, name):
    server.files["maps.tar.gz"] = _tar_bytes(_good("maps"))
    victim = tmp_path / "victim.txt"
    victim.write_bytes(b"precious")
    root = tmp_path / "root"
    root.mkdir()
    (root / name).symlink_to(victim)
    with pytest.raises(OSError, match=rf"{name.replace('.', '[.]')}: is a link or special file.*left as it is"):
        download_dataset("maps", root, base_url=server.url, progress=False)
    assert victim.read_bytes() == b"precious" and (root / name).is_symlink() and _names(root) == [name]


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no fifos here")
def test_a_fifo_at_the_part_name_is_refused_without_waiting(server, tmp_path):
    server.files["maps.tar.gz"] = _tar_bytes(_good("maps"))
    os.mkfifo(tmp_path / "maps.tar.gz.part")
    outcome = []

    def run():
        try:
            download_dataset("maps", tmp_path, base_url=server.url, progress=False)
        except OSError as err:
            outcome.append(str(err))

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(10)
    if thread.is_alive():  # the old code blocks opening the fifo: give it a reader so it ends
        os.close(os.open(tmp_path / "maps.tar.gz.part", os.O_RDONLY | os.O_NONBLOCK))
    assert outcome and "is a link or special file" in outcome[0]


def test_a_link_at_the_marker_name_is_refused_and_its_target_untouched(server, tmp_path):
    server.files["maps.tar.gz"] = _tar_bytes(_good("maps"))
    victim = tmp_path / "victim.txt"
    victim.write_bytes(b"precious")
    root = tmp_path / "root"
    root.mkdir()
    (root / ".maps.tar.gz.download.json").symlink_to(victim)
    with pytest.raises(OSError, match="is not a marker this library wrote; it is left as it is"):
        download_dataset("maps", root, base_url=server.url, progress=False)
    assert victim.read_bytes() == b"precious" and _names(root) == [".maps.tar.gz.download.json"]


# --- 3. an archive that holds no dataset -------------------------------------------------------------
@pytest.mark.parametrize("members, held", [
    ([("facades", None), ("facades/testA", None), ("facades/testA/1.jpg", PAYLOAD)], "facades/"),
    ([("facades/train/readme.txt", b"no pictures")], "facades/"),
    ([], "nothing"),
])
def test_an_archive_without_train_pairs_is_refused_and_leaves_nothing(server, tmp_path, members, held):
    server.files["facades.tar.gz"] = _tar_bytes(members)
    with pytest.raises(RuntimeError, match=rf"holds no train/ pairs \(it held: {held}\)"):
        download_dataset("facades", tmp_path, base_url=server.url, progress=False)
    assert list(tmp_path.iterdir()) == []  # no dataset, no half-made folder; our download is deleted


@pytest.mark.parametrize("member", ["facades/.pix2pix-partial", "facades/.made-by-pix2pix_lib"])
def test_an_archive_cannot_plant_the_librarys_own_files(server, tmp_path, member):
    server.files["facades.tar.gz"] = _tar_bytes(_good() + [(member, None), (member + "/x", b"x")])
    with pytest.raises(RuntimeError, match="a name this library keeps for itself"):
        download_dataset("facades", tmp_path, base_url=server.url, progress=False)
    assert list(tmp_path.iterdir()) == []


# --- 5. names print as one line ---------------------------------------------------------------------------
def test_file_and_member_names_print_as_one_printable_line(server, tmp_path, capsys):
    root = tmp_path / "da\x1b[2J\nta"
    data = _tar_bytes(_good())
    for served, shown in [(data[: len(data) // 2], "da\\x1b[2J\\nta/facades.tar.gz: corrupt"),
                          (_tar_bytes([("evil\x1b]0;owned\x07\nname", None)]), "evil\\x1b]0;owned\\x07\\nname/")]:
        server.files["facades.tar.gz"] = served
        assert main(["download", "facades", "--root", str(root), "--base-url", server.url]) == 2
        err = capsys.readouterr().err.split("error: ")  # after the progress bar: one line
        assert len(err) == 2 and err[1].endswith("\n") and err[1][:-1].isprintable() and shown in err[1], err


# --- 6. Ctrl-C (or SIGTERM made KeyboardInterrupt) during a download -------------------------------------
@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_ctrl_c_keeps_our_part_for_the_resume_and_touches_nothing_else(server, tmp_path):
    big = random.Random(1).randbytes(200_000)  # more than one read of the download loop
    data = _tar_bytes(_good("maps") + [("maps/train/big.jpg", big)])
    server.files["maps.tar.gz"] = data
    (tmp_path / "notes.txt").write_text("mine")
    part = tmp_path / "maps.tar.gz.part"

    def ctrl_c_once_a_chunk_is_on_disk():  # SIGTERM reaches here as the same KeyboardInterrupt
        deadline = time.monotonic() + 10
        while not (part.exists() and part.stat().st_size) and time.monotonic() < deadline:
            time.sleep(0.01)
        os.kill(os.getpid(), signal.SIGINT)

    server.pause_at, server.on_pause = 100_000, ctrl_c_once_a_chunk_is_on_disk
    with pytest.raises(KeyboardInterrupt):
        download_dataset("maps", tmp_path, base_url=server.url, progress=False)
    size = part.stat().st_size
    assert 0 < size < len(data) and part.read_bytes() == data[:size]
    server.pause_at = None
    out = download_dataset("maps", tmp_path, base_url=server.url, progress=False)
    assert server.requests[-1].get("Range") == f"bytes={size}-"
    assert (out / "train" / "big.jpg").read_bytes() == big
    assert _names(tmp_path) == ["maps", "notes.txt"] and (tmp_path / "notes.txt").read_text() == "mine"


# --- Carvana: a zip or folder the user put there is never replaced ------------------------------------
def test_carvana_fetches_only_what_is_missing_and_never_replaces_a_users_file(tmp_path, monkeypatch):
    def zipped(folder):
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as zf:
            zf.writestr(f"{folder}/car_01{'_mask.gif' if folder == 'train_masks' else '.jpg'}", b"kaggle")
        return buffer.getvalue()

    def competition_download_file(competition, member, path):
        with open(os.path.join(path, member), "wb") as f:
            f.write(zipped(member.removesuffix(".zip")))

    fake = types.ModuleType("kaggle")
    fake.api = types.SimpleNamespace(competition_download_file=competition_download_file)
    monkeypatch.setitem(sys.modules, "kaggle", fake)
    monkeypatch.setenv("KAGGLE_USERNAME", "u")
    monkeypatch.setenv("KAGGLE_KEY", "k")
    root = tmp_path / "carvana"
    (root / "train").mkdir(parents=True)
    (root / "train" / "car_01.jpg").write_bytes(b"my own retouched photo")
    (root / "train.zip").write_bytes(b"my half-finished browser download")
    assert download_carvana(tmp_path) == root
    assert (root / "train" / "car_01.jpg").read_bytes() == b"my own retouched photo"
    assert (root / "train.zip").read_bytes() == b"my half-finished browser download"
    assert (root / "train_masks" / "car_01_mask.gif").read_bytes() == b"kaggle"
    assert _names(root) == ["train", "train.zip", "train_masks"]


# --- 4. download-model on files that are no reference U-Net ------------------------------------------------
def _saved(obj) -> bytes:
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


def _altered(change):
    return {k: change(k, v) for k, v in _reference_state(scale=8).items()}


BAD_MODELS = {
    "empty file": b"",
    "a list": [torch.zeros(3)],
    "an empty dict": {},
    "a non-string key": {1: torch.zeros(3)},
    "numbers, not tensors": {"model.model.0.weight": 1.5, "other": [1, 2]},
    "another network's keys": {"conv.weight": torch.zeros(8, 3, 4, 4), "fc.bias": torch.zeros(3)},
    "a key missing": {k: v for k, v in _reference_state(scale=8).items() if k != "model.model.1.model.2.weight"},
    "a wrong shape": _altered(lambda k, v: torch.zeros(8, 3, 3, 3) if k == "model.model.0.weight" else v),
    "a 1-D first conv": _altered(lambda k, v: torch.zeros(8) if k == "model.model.0.weight" else v),
    "int8 tensors": _altered(lambda k, v: v.to(torch.int8) if v.is_floating_point() else v),
    "complex tensors": _altered(lambda k, v: v.to(torch.complex64) if v.is_floating_point() else v),
    "a NaN weight": _altered(lambda k, v: v.clone().fill_(float("nan")) if k == "model.model.0.weight" else v),
    "an infinite mean": _altered(lambda k, v: v.clone().fill_(float("inf")) if k.endswith("running_mean") else v),
    "all values 1e38": _altered(lambda k, v: torch.full_like(v, 1e38) if v.is_floating_point() else v),
    "negative variances": _altered(lambda k, v: -torch.ones_like(v) if k.endswith("running_var") else v),
    "all zeros (a flat picture)": _altered(lambda k, v: torch.zeros_like(v) if v.is_floating_point() else v),
    "levels of another depth": {k.replace("model.model.1.model.3.", "model.model.1.model."): v
                                for k, v in _reference_state(scale=8).items()},
    "a small file claiming huge tensors": {"model.model.0.weight": torch.zeros(1, 1, 1, 1).expand(4096, 3, 4, 4),
                       "model.model.3.weight": torch.zeros(8192, 3, 4, 4)[:1].expand(8192, 3, 4, 4)},
}


@pytest.fixture
def model_server():
    s = _Server()
    s.url = s.url.replace("/datasets", "/models-pytorch")
    yield s
    s.close()


@pytest.mark.parametrize("case", list(BAD_MODELS))
def test_download_model_refuses_a_file_that_is_no_reference_u_net_in_one_line(model_server, tmp_path, capsys, case):
    content = BAD_MODELS[case]
    model_server.files["edges2shoes.pth"] = content if isinstance(content, bytes) else _saved(content)
    out = tmp_path / "w"
    assert main(["download-model", "edges2shoes", "--out", str(out), "--base-url", model_server.url]) == 2
    err = capsys.readouterr().err  # after the progress bar: one line
    assert err.count("error: ") == 1, err
    message = err.split("error: ")[1]
    assert message.endswith("\n") and message[:-1].isprintable() and ".edges2shoes.reference.pth" in message
    assert list(out.iterdir()) == []  # nothing converted, the download deleted (it was ours)


def test_download_model_leaves_a_file_it_did_not_download(model_server, tmp_path):
    model_server.files["edges2shoes.pth"] = _saved(_reference_state(scale=8))
    out = tmp_path / "w"
    out.mkdir()
    (out / ".edges2shoes.reference.pth").write_bytes(b"someone's file")
    with pytest.raises(OSError, match="was not downloaded by this command; it is left as it is"):
        pretrained.download_model("edges2shoes", out, base_url=model_server.url, progress=False)
    assert (out / ".edges2shoes.reference.pth").read_bytes() == b"someone's file"
    assert _names(out) == [".edges2shoes.reference.pth"]


def test_ctrl_c_between_a_write_and_its_hash_leaves_a_part_the_next_run_resumes(server, tmp_path, monkeypatch):
    """The signal can land after os.write and before the hash update: the marker must still match the file."""
    from pix2pix_lib.data import fetch

    data = _tar_bytes(_good("maps") + [("maps/train/big.jpg", random.Random(2).randbytes(200_000))])
    server.files["maps.tar.gz"] = data
    real = fetch._write_all

    def write_then_interrupt(fd, chunk, digest):
        os.write(fd, chunk)  # on disk, not yet in the hash
        raise KeyboardInterrupt

    monkeypatch.setattr(fetch, "_write_all", write_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        download_dataset("maps", tmp_path, base_url=server.url, progress=False)
    size = (tmp_path / "maps.tar.gz.part").stat().st_size
    assert size > 0
    monkeypatch.setattr(fetch, "_write_all", real)
    out = download_dataset("maps", tmp_path, base_url=server.url, progress=False)  # resumed, not refused
    assert server.requests[-1].get("Range") == f"bytes={size}-" or size == len(data)
    assert (out / "train" / "big.jpg").read_bytes() == random.Random(2).randbytes(200_000)
