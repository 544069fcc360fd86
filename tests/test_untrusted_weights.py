"""Weights files nobody should trust (issue 20): one loader that inspects the archive before torch
unpickles it, FID weights read once, weights that cannot make a working network, well-formed files
with fields of the wrong type, and generate's results recognised by the hash of their pixels."""

from __future__ import annotations

import builtins
import io
import math
import struct
import zipfile
from pathlib import Path

import pytest
import torch
from PIL import Image, ImageDraw

from pix2pix_lib import generate as gen
from pix2pix_lib import metrics, train, weights
from pix2pix_lib.cli import main
from pix2pix_lib.config import TrainConfig
from pix2pix_lib.models import build_generator

TINY = TrainConfig(image_size=32, ngf=4, ndf=4, patch_size=16, batch_size=2, precision="fp32", epochs=1,
                   epochs_decay=0)
ODD = "bad\n\x1b[31mname"  # a newline and a terminal colour escape in a file name


@pytest.fixture
def tiny_file(tmp_path):
    torch.manual_seed(0)
    return weights.save_generator(tmp_path / "g.pt", build_generator(image_size=32, ngf=4), TINY.to_dict())


@pytest.fixture
def torch_load_refused(monkeypatch):
    """torch.load must not be reached: the archive is refused before torch reads a byte of it."""
    def refuse(*args, **kwargs):
        raise AssertionError("torch.load was reached")
    monkeypatch.setattr(torch, "load", refuse)


def _one_line(err) -> str:
    text = str(err.value if hasattr(err, "value") else err)
    assert "\n" not in text and "\x1b" not in text, text
    return text


def _rezip(src: Path, dst: Path, *, compress: bool = False, extra: dict | None = None) -> Path:
    """A copy of a torch file, its storage entries DEFLATE-compressed, or with extra entries."""
    with zipfile.ZipFile(src) as old, zipfile.ZipFile(dst, "w") as new:
        for info in old.infolist():
            method = zipfile.ZIP_DEFLATED if compress and "/data/" in info.filename else zipfile.ZIP_STORED
            new.writestr(info.filename, old.read(info), compress_type=method)
        prefix = old.namelist()[0].split("/")[0]
        for name, data in (extra or {}).items():
            new.writestr(f"{prefix}/{name}", data)
    return dst


def _alias_entries(path: Path) -> None:
    """Add central-directory entries that all point at the largest entry's bytes (overlapping entries)."""
    data = bytearray(path.read_bytes())
    end = data.rindex(b"PK\x05\x06")  # the end-of-central-directory record
    count, size, offset = struct.unpack("<HII", data[end + 10:end + 20])
    directory = bytes(data[offset:offset + size])
    records, at = [], 0
    while at < len(directory):  # 46 fixed bytes, then the name, extra field and comment
        length = 46 + sum(struct.unpack("<HHH", directory[at + 28:at + 34]))
        records.append(directory[at:at + length])
        at += length
    largest = max(records, key=lambda r: struct.unpack("<I", r[24:28])[0])
    name_length = struct.unpack("<H", largest[28:30])[0]
    copies = len(data) // struct.unpack("<I", largest[24:28])[0] + 1  # enough to claim more than the file
    prefix = largest[46:46 + name_length].decode().split("/")[0]
    aliases = b"".join(largest[:28] + struct.pack("<H", len(name := f"{prefix}/data/{900 + i}")) + largest[30:46]
                       + name.encode() + largest[46 + name_length:] for i in range(copies))
    tail = struct.pack("<HHII", count + copies, count + copies, size + len(aliases), offset)
    path.write_bytes(bytes(data[:offset + size]) + aliases + bytes(data[end:end + 8]) + tail + bytes(data[end + 20:]))


# ----------------------------------------------------------------------------- 1. one loader, the archive first
def test_a_compressed_storage_entry_is_refused_before_torch_inflates_it(tmp_path, tiny_file, torch_load_refused):
    big = tmp_path / "big.pt"
    buffer = io.BytesIO()
    torch.serialization.save({"w": torch.zeros(2**20)}, buffer)  # 4 MB of zeros: ~4 KB compressed
    big.write_bytes(buffer.getvalue())
    bomb = _rezip(big, tmp_path / "bomb.pt", compress=True)
    assert bomb.stat().st_size < 50_000
    for load in (lambda p: weights.load_plain(p), weights.load_generator, train.read_checkpoint,
                 lambda p: metrics.build_lpips(p)[1]):
        try:
            result = load(bomb)
        except ValueError as err:
            result = str(err)
        assert "bomb.pt" in result and "is compressed" in result and "refused before reading it" in result, result
    assert not weights.is_weights_file(bomb)


def test_entries_that_overlap_or_torch_never_writes_are_refused(tmp_path, tiny_file, torch_load_refused):
    overlapping = tmp_path / "overlap.pt"
    overlapping.write_bytes(tiny_file.read_bytes())
    _alias_entries(overlapping)
    with zipfile.ZipFile(overlapping) as z:  # a valid zip whose entries claim more bytes than the file has
        assert sum(i.file_size for i in z.infolist()) > overlapping.stat().st_size
    with pytest.raises(ValueError, match=r"overlap\.pt: .*claim .* MB from") as err:
        weights.load_generator(overlapping)
    _one_line(err)
    extra = _rezip(tiny_file, tmp_path / "extra.pt", extra={"code/__torch__.py": b"import os"})
    with pytest.raises(ValueError, match=r"extra\.pt: .*entries torch does not write .*code/__torch__\.py"):
        weights.load_generator(extra)


def test_the_pre_1_6_format_is_refused_with_how_to_re_save_it(tmp_path, torch_load_refused):
    old = tmp_path / "old.pth"
    torch.serialization.save({"features.0.weight": torch.zeros(2)}, old, _use_new_zipfile_serialization=False)
    with pytest.raises(ValueError, match=r"old\.pth: .*from before 1\.6.*re-save it") as err:
        weights.load_plain(old)
    assert "weights_only=True" in _one_line(err)
    assert metrics.build_lpips(old)[1].startswith(f"skipped: {old}: a weights file in PyTorch's format")


def test_the_loader_opens_the_file_once_and_mmap_reads_the_same_open_file(tmp_path, tiny_file, monkeypatch):
    opened, real_open = [], builtins.open

    def recording_open(file, *args, **kwargs):
        opened.append(str(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", recording_open)
    generator, _ = weights.load_generator(tiny_file)
    mapped = weights.load_plain(tiny_file, mmap=True)
    monkeypatch.undo()
    assert opened.count(str(tiny_file)) == 2  # once per load: the bytes checked are the bytes read
    assert torch.equal(mapped["state_dict"]["encoder.0.0.weight"], generator.state_dict()["encoder.0.0.weight"])


# ----------------------------------------------------------------------------- 2. FID weights read once
class Marker:
    """Pickled code: unpickling it creates the file `path` (through `open(path, "w")`)."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return io.open, (self.path, "w")


def test_fid_weights_swapped_after_the_check_never_run_and_are_opened_once(tmp_path, monkeypatch, no_downloads):
    path, marker = tmp_path / "inception.pth", tmp_path / "pickled_code_ran"
    torch.save({"fc.weight": torch.zeros(2, 2)}, path)
    real_load, opened, real_open = metrics.load_plain, [], builtins.open

    def load_then_swap(p, *args, **kwargs):
        result = real_load(p, *args, **kwargs)
        torch.save(Marker(marker), path)  # someone swaps the file right after the check
        return result

    def recording_open(file, *args, **kwargs):
        opened.append(str(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(metrics, "load_plain", load_then_swap)
    monkeypatch.setattr(builtins, "open", recording_open)
    try:
        metric, status = metrics.build_fid(path)
    finally:
        monkeypatch.setattr(builtins, "open", real_open)
    assert not marker.exists(), "the swapped file's pickled code ran"
    assert opened.count(str(path)) == 1
    assert metric is None and status.startswith(f"skipped: {path}: not torch-fidelity's Inception weights"), status


def test_fid_from_a_local_inception_file_gets_exactly_its_tensors(tmp_path, monkeypatch, no_downloads):
    from torch_fidelity import feature_extractor_inceptionv3 as fidelity

    with monkeypatch.context() as patch:  # a randomly initialised Inception: the real file's layout
        patch.setattr(fidelity, "load_state_dict_from_url", lambda *a, **k: {})
        patch.setattr(fidelity.FeatureExtractorInceptionV3, "load_state_dict", lambda self, state: None)
        state = fidelity.FeatureExtractorInceptionV3("inception-v3-compat", ["2048"]).state_dict()
    torch.save(state, tmp_path / "inception.pth")
    metric, status = metrics.build_fid(tmp_path / "inception.pth")
    assert status == f"ok: {tmp_path / 'inception.pth'}"
    assert torch.equal(metric.inception.state_dict()["fc.weight"], state["fc.weight"])
    state["fc.weight"][0, 0] = math.nan
    torch.save(state, tmp_path / "nan.pth")
    assert "NaN or infinite" in metrics.build_fid(tmp_path / "nan.pth")[1]


# ----------------------------------------------------------------------------- 3. weights that cannot work
def _broken(tmp_path, name, change) -> Path:
    torch.manual_seed(0)
    g = build_generator(image_size=32, ngf=4)
    state = {k: v.clone() for k, v in g.state_dict().items()}
    change(state)
    path = tmp_path / name
    config = {k: v for k, v in TINY.to_dict().items() if k in weights.GENERATOR_KEYS}
    torch.save({"format": weights.WEIGHTS_FORMAT_V1, "config": config, "state_dict": state, "extra": {}}, path)
    return path


def _fill(value, which=lambda k: True):
    def change(state):
        for k, v in state.items():
            if v.is_floating_point() and which(k):
                v.fill_(value)
    return change


@pytest.mark.parametrize("name, change, said", [
    ("huge.pt", _fill(1e38), "values up to 1e+38"),
    ("variance.pt", _fill(-1.0, lambda k: k.endswith("running_var")), "is a variance, and negative"),
    ("int8.pt", lambda s: s.update({"encoder.0.0.weight": s["encoder.0.0.weight"].to(torch.int8)}),
     "encoder.0.0.weight is int8, expected a floating-point tensor"),
    ("flat.pt", _fill(0.0, lambda k: not k.endswith("running_var")), "one flat colour"),
    ("overflow.pt", _fill(3e5, lambda k: k.endswith("weight")), "turn a drawing into"),
    ("expanded.pt", lambda s: s.update({"encoder.1.0.weight": torch.zeros(1).expand(s["encoder.1.0.weight"].shape)}),
     "tensors overlap"),
])
def test_finite_weights_that_cannot_paint_are_refused_on_load(tmp_path, name, change, said):
    path = _broken(tmp_path, name, change)
    with pytest.raises(ValueError, match=str(path)) as err:
        weights.load_generator(path)
    assert said in _one_line(err)


def test_the_same_check_guards_checkpoints_and_is_one_function_for_other_loaders(tmp_path):
    from pix2pix_lib.train import TrainingState

    model = TrainingState.from_config(TINY, "cpu")
    state = train.training_state_dict(model)
    state["generator"] = {k: v.clone().fill_(-1.0) if k.endswith("running_var") else v
                          for k, v in state["generator"].items()}
    torch.save(state, tmp_path / "checkpoint.pt")
    with pytest.raises(ValueError, match="checkpoint.pt: the generator's weights are no working network"):
        train.read_checkpoint(tmp_path / "checkpoint.pt")
    with pytest.raises(ValueError, match="x.pt: the generator's weights are no working network"):
        weights.check_state_fits(build_generator(image_size=32, ngf=4), state["generator"], "x.pt", "generator")


def test_a_config_describing_a_huge_network_is_refused_before_it_is_built(tmp_path, tiny_file):
    data = torch.load(tiny_file, weights_only=True)
    data["card"]["network"]["image_size"] = 2**20
    torch.save(data, tmp_path / "huge_config.pt")
    with pytest.raises(ValueError, match="huge_config.pt: .*image_size is over 2048"):
        weights.load_generator(tmp_path / "huge_config.pt")


# ----------------------------------------------------------------------------- 4. fields of the wrong type
@pytest.mark.parametrize("sketch, field", [("thin", "card.sketch_style"), ([1.0, 0.9], "card.sketch_style"),
                                           ({"fill": "thin"}, "fill")])
def test_a_sketch_style_of_the_wrong_type_is_refused_at_load_not_a_traceback_in_generate(
        tmp_path, tiny_file, sketch, field, capsys):
    data = torch.load(tiny_file, weights_only=True)
    data["card"]["sketch_style"] = sketch
    torch.save(data, tmp_path / "style.pt")
    with pytest.raises(ValueError, match=f"style.pt: not a usable generator .*'{field}' is a"):
        weights.load_generator(tmp_path / "style.pt")
    _sketch(tmp_path / "d.png")
    assert main(["generate", "--weights", str(tmp_path / "style.pt"), str(tmp_path / "d.png"),
                 "-o", str(tmp_path / "o.png")]) == 2
    err = capsys.readouterr().err
    assert f"'{field}'" in err and "Traceback" not in err and not (tmp_path / "o.png").exists()


def _checkpoint(tmp_path, **changes) -> Path:
    from pix2pix_lib.train import TrainingState

    model = TrainingState.from_config(TINY, "cpu")
    model.history = [{"epoch": 1, "step": 4, "val_l1": 0.3, "seconds": 1.0}]
    state = {**train.training_state_dict(model), **changes}
    torch.save(state, tmp_path / "checkpoint.pt")
    return tmp_path / "checkpoint.pt"


@pytest.mark.parametrize("changes, field", [
    ({"history": ["epoch 1"]}, "'history[0]' is a str, expected a dict"),
    ({"history": [{"epoch": 1, "val_l1": "0.3"}]}, "'history[0].val_l1' is a str"),
    ({"history": [{"epoch": 1, "val_l1": 0.3, "note": [1]}]}, "'history[0].note' is a list"),
    ({"data": ["path"]}, "'data' is a list, expected a dict"),
    ({"data": {"sketch_style": "thin"}}, "'data.sketch_style' is a str"),
    ({"generator": {0: torch.zeros(1)}}, "'generator' has a key that is a int"),
    # Of the right type, but no value a run could have written.
    ({"epoch": -5}, "'epoch' is -5, outside"),
    ({"epoch": 10**20}, "'epoch' is 100000000000000000000, outside"),
    ({"best_val_l1": float("nan")}, "'best_val_l1' is nan, outside"),
    ({"history": [{"epoch": 0, "val_l1": 0.3}]}, "'history[0].epoch' is 0, outside"),
])
def test_checkpoint_fields_of_the_wrong_type_are_refused_by_every_reader(tmp_path, changes, field):
    from pix2pix_lib.train import TrainingState

    path = _checkpoint(tmp_path, **changes)
    for read in (train.read_checkpoint, weights.load_generator,
                 lambda p: weights.export_generator(p, tmp_path / "out.pt")):
        with pytest.raises(ValueError, match=str(path)) as err:
            read(path)
        assert field in _one_line(err)
    state = train.training_state_dict(TrainingState.from_config(TINY, "cpu")) | changes
    with pytest.raises(ValueError, match="checkpoint.pt: not a usable pix2pix checkpoint"):
        train.load_training_state(TrainingState.from_config(TINY, "cpu"), state, tmp_path / "checkpoint.pt")


def test_optimiser_moments_that_do_not_fit_their_parameters_are_refused(tmp_path):
    from pix2pix_lib.train import TrainingState

    model = TrainingState.from_config(TINY, "cpu")
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    model.training_step(x, x)
    state = train.training_state_dict(model)
    state["opt_g"]["state"][0]["exp_avg_sq"] = -state["opt_g"]["state"][0]["exp_avg_sq"] - 1
    with pytest.raises(ValueError, match=r"run\.pt: .*'opt_g\.state\[0\]\.exp_avg_sq' does not fit"):
        train.load_training_state(TrainingState.from_config(TINY, "cpu"), state, "run.pt")
    state["opt_g"]["state"][0]["exp_avg_sq"] = torch.zeros(3)
    with pytest.raises(ValueError, match="does not fit its parameter"):
        train.load_training_state(TrainingState.from_config(TINY, "cpu"), state, "run.pt")


# ----------------------------------------------------------------------------- 5. generate's results
def _sketch(path: Path) -> Path:
    im = Image.new("L", (64, 64), 255)
    ImageDraw.Draw(im).ellipse([12, 12, 52, 52], outline=0, width=3)
    im.save(path)
    return path


@pytest.mark.parametrize("suffix", [".png", ".jpg", ".webp", ".tif", ".gif", ".bmp"])
def test_generate_recognises_its_own_result_in_every_format_it_writes(tmp_path, tiny_file, suffix, capsys):
    sketch, out = _sketch(tmp_path / "d.png"), tmp_path / f"out{suffix}"
    for _ in range(2):  # the second run replaces its own picture
        assert main(["generate", "--weights", str(tiny_file), str(sketch), "-o", str(out)]) == 0
    assert gen.made_by_generate(out)
    capsys.readouterr()


@pytest.mark.parametrize("suffix", [".jpg", ".png"])
def test_a_retouched_result_is_kept_even_when_the_editor_kept_the_tag(tmp_path, tiny_file, suffix, capsys):
    sketch, out = _sketch(tmp_path / "d.png"), tmp_path / f"out{suffix}"
    assert main(["generate", "--weights", str(tiny_file), str(sketch), "-o", str(out)]) == 0
    with Image.open(out) as im:  # a retouch that keeps the text tag, as GIMP keeps a JPEG comment
        info, edited = dict(im.info), im.convert("RGB")
    edited.putpixel((3, 3), (255, 0, 0))
    if suffix == ".jpg":
        edited.save(out, comment=info["comment"], quality=95)
    else:
        from PIL.PngImagePlugin import PngInfo
        text = PngInfo()
        text.add_text("Software", info["Software"])
        edited.save(out, pnginfo=text)
    before = out.read_bytes()
    capsys.readouterr()
    assert main(["generate", "--weights", str(tiny_file), str(sketch), "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert "pixels changed since" in err and "it is kept" in err and out.read_bytes() == before
    assert gen.result_state(out) == "edited" and not gen.made_by_generate(out)
    assert main(["generate", "--weights", str(tiny_file), str(sketch), "-o", str(out), "--force"]) == 0


def test_a_tag_without_the_pixels_hash_is_not_taken_for_ours(tmp_path):
    Image.new("RGB", (8, 8)).save(tmp_path / "old.jpg", comment=gen.RESULT_TAG)
    assert not gen.made_by_generate(tmp_path / "old.jpg")
    with pytest.raises(ValueError, match=r"out\.pdf: generate writes \.png"):
        gen.plan_outputs(_sketch(tmp_path / "d.png"), tmp_path / "out.pdf")


# ----------------------------------------------------------------------------- 6. names shown on one line
def test_file_names_in_weights_errors_stay_on_one_line(tmp_path):
    odd = tmp_path / f"{ODD}.pt"
    odd.write_bytes(b"\x00garbage" * 10)
    for load in (weights.load_generator, train.read_checkpoint, weights.load_plain):
        with pytest.raises(ValueError) as err:
            load(odd)
        assert "name.pt" in _one_line(err)
    assert _one_line(metrics.build_lpips(odd)[1])
    with pytest.raises(FileNotFoundError) as err:
        weights.load_generator(tmp_path / f"{ODD}-missing.pt")
    _one_line(err)


def test_a_generator_config_no_network_could_have_is_refused_by_name(tmp_path, tiny_file):
    data = torch.load(tiny_file, weights_only=True)
    data["card"]["network"]["ngf"] = -4
    torch.save(data, tmp_path / "neg.pt")
    with pytest.raises(ValueError, match=r"neg\.pt: .*'card\.network\.ngf' is -4, outside"):
        weights.load_generator(tmp_path / "neg.pt")


def test_a_file_that_appears_after_the_plan_is_kept(tmp_path, monkeypatch):
    from PIL import Image

    from pix2pix_lib import generate
    from pix2pix_lib.files import RefusedError

    picture = Image.new("RGB", (8, 8), "red")
    late = tmp_path / "late.png"
    late.write_text("USERFILE")  # planned as free minutes ago; someone put a file there since
    with pytest.raises(RefusedError, match="not written by generate"):
        generate.save_result(picture, late)
    assert late.read_text() == "USERFILE"

    racing = tmp_path / "racing.png"
    check = generate._refuse_overwrite

    def then_a_file_appears(dst, force):
        check(dst, force)
        racing.write_text("USERFILE")  # between the last check and the write

    monkeypatch.setattr(generate, "_refuse_overwrite", then_a_file_appears)
    with pytest.raises(RefusedError, match="appeared while generate was writing"):
        generate.save_result(picture, racing)
    assert racing.read_text() == "USERFILE"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["late.png", "racing.png"]  # no temporary left
    monkeypatch.undo()
    generate.save_result(picture, tmp_path / "new.png")
    assert generate.made_by_generate(tmp_path / "new.png")
