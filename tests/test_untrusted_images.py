"""Files that lie (issue 20): every image read goes through imaging.open_image with our formats only,
pair files are decoded whole before training, the cache setting, canvas input and file names are
checked, and a run's data fingerprint sees the files' contents."""

import hashlib
import io
import os
import types
import warnings

import numpy as np
import pytest
import torch
import traitlets
from PIL import EpsImagePlugin, Image

from pix2pix_lib import imaging, preprocess, report
from pix2pix_lib import experiments as experiments_module
from pix2pix_lib import generate as generate_module
from pix2pix_lib.canvas import DoodleCanvas, _check_strokes, image_from_png
from pix2pix_lib.cli import main
from pix2pix_lib.data import PairedImageDataset, load_rgb, make_pair_image
from pix2pix_lib.data import openmoji as openmoji_module
from pix2pix_lib.data import paired as paired_module
from pix2pix_lib.models import build_generator
from pix2pix_lib.train import check_data

from conftest import write_tiny_pairs

TINY_ARGS = ["--image-size", "32", "--ngf", "8", "--ndf", "8", "--patch-size", "16", "--batch-size", "2",
             "--precision", "fp32", "--epochs", "1", "--epochs-decay", "0", "--quiet"]
ODD = "bad\n\x1b[31mname"  # a newline and a terminal colour escape in a file name


def _eps_bytes(size=(64, 32)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, "white").save(buffer, "EPS")  # Pillow writes EPS without Ghostscript
    return buffer.getvalue()


@pytest.fixture
def eps_asked(monkeypatch):
    """Every time Pillow's PostScript reader (or Ghostscript) is asked, recorded, and refused."""
    asked = []

    def refuse(*args, **kwargs):
        asked.append(args)
        raise OSError("the EPS plugin was asked")

    monkeypatch.setattr(EpsImagePlugin.EpsImageFile, "_open", refuse)
    monkeypatch.setattr(EpsImagePlugin, "Ghostscript", refuse)
    return asked


@pytest.fixture
def tiny_g():
    return build_generator(image_size=32, ngf=4).eval()


def _one_line(text: str) -> bool:
    return "\n" not in text and "\x1b" not in text


# --- 1. PostScript under an image's name is refused everywhere, never handed to the EPS reader ----
def test_eps_named_png_or_jpg_is_refused_by_open_image_and_load_rgb(tmp_path, eps_asked):
    for name in ("sketch.png", "photo.jpg"):
        (tmp_path / name).write_bytes(_eps_bytes())
        with pytest.raises(ValueError, match=f"{name}: not an image of a format") as err:
            imaging.open_image(tmp_path / name)
        assert _one_line(str(err.value))
        with pytest.raises(ValueError, match=name):
            load_rgb(tmp_path / name)  # what evaluation and training read pairs with
    with pytest.raises(ValueError, match="upload: not an image"):
        imaging.open_image(_eps_bytes(), name="upload")
    assert eps_asked == []


def test_eps_pair_fails_the_dataset_pre_check(tmp_path, eps_asked):
    root = write_tiny_pairs(tmp_path / "pairs", n_train=3)
    (root / "train" / "train_001.png").write_bytes(_eps_bytes())  # twice as wide as tall, like a pair
    assert "not an image of a format" in paired_module.pair_file_problem(root / "train" / "train_001.png")
    ds = PairedImageDataset(root, "train", image_size=32)
    with pytest.raises(ValueError, match=r"train_001\.png: not an image of a format.*--skip-bad"):
        ds.check_files()
    assert eps_asked == []


def test_eps_sketch_is_refused_by_generate_and_never_taken_for_a_result(tmp_path, eps_asked, capsys):
    torch.manual_seed(0)
    from pix2pix_lib import weights as weights_module
    from pix2pix_lib.config import TrainConfig
    weights = weights_module.save_generator(tmp_path / "g.pt", build_generator(image_size=32, ngf=4),
                                            TrainConfig(image_size=32, ngf=4).to_dict())
    (tmp_path / "doodle.png").write_bytes(_eps_bytes((40, 40)))
    assert main(["generate", "--weights", str(weights), str(tmp_path / "doodle.png"), "-o", str(tmp_path / "o.png")]) == 2
    err = capsys.readouterr().err
    assert "doodle.png: not an image of a format" in err and "Traceback" not in err
    with pytest.raises(ValueError, match="not an image of a format"):
        preprocess.load_gray(tmp_path / "doodle.png")
    (tmp_path / "old_result.png").write_bytes(_eps_bytes())
    assert not generate_module.made_by_generate(tmp_path / "old_result.png")
    assert eps_asked == []


def test_canvas_refuses_eps_bytes_from_the_browser(tiny_g, eps_asked):
    with pytest.raises(ValueError, match="the canvas image: not an image of a format this reads \\(PNG\\)"):
        image_from_png(_eps_bytes((64, 64)))
    w = DoodleCanvas(tiny_g, size=64)
    w.set_state({"drawing_png": memoryview(_eps_bytes((64, 64)))})
    assert w.generate() is None and w.result_png == b""
    assert w.status.startswith("the canvas image: not an image") and _one_line(w.status)
    assert eps_asked == []


def test_ablation_grids_and_rendered_svgs_read_only_png(tmp_path, eps_asked, monkeypatch):
    (tmp_path / "ablations.png").write_bytes(_eps_bytes())
    with pytest.raises(ValueError, match="ablations.png: not an image"):
        report.plot_ablation_grid(tmp_path / "ablations.png", {"variants": []})
    (tmp_path / "sketches.png").write_bytes(_eps_bytes())
    with pytest.raises(ValueError, match="sketches.png: not an image of a format this reads \\(PNG\\)"):
        experiments_module.ablation_grid(tmp_path, {"variants": []})
    monkeypatch.setattr(openmoji_module.resvg_py, "svg_to_bytes", lambda **kw: _eps_bytes())
    with pytest.raises(ValueError, match="1F98A.svg: not an image"):
        openmoji_module.render_svg("<svg/>", size=32, path="1F98A.svg")
    assert eps_asked == []


# --- 2. a PNG damaged in the middle is found before training, and --skip-bad can skip it ----------
def _damage_middle(path):
    data = bytearray(path.read_bytes())
    idat = data.index(b"IDAT")
    data[idat + 8: idat + 40] = bytes(32)  # pixels damaged; header, size and the end (IEND) intact
    path.write_bytes(bytes(data))


def test_png_damaged_in_the_middle_fails_the_pre_check(tmp_path):
    root = write_tiny_pairs(tmp_path / "pairs", n_train=4)
    bad = root / "train" / "train_002.png"
    _damage_middle(bad)
    assert paired_module.pair_file_problem(bad) is not None
    ds = PairedImageDataset(root, "train", image_size=32)
    with pytest.raises(ValueError) as err:
        ds.check_files()
    assert "train_002.png" in str(err.value) and "--skip-bad" in str(err.value) and _one_line(str(err.value))
    with pytest.warns(UserWarning, match="left out 1 of 4 bad files.*train_002.png"):
        ds.check_files(skip_bad=True)
    assert [p.name for p in ds.files] == ["train_000.png", "train_001.png", "train_003.png"]


def test_the_pre_check_fills_the_cache_so_nothing_is_decoded_twice(tmp_path, monkeypatch):
    root = write_tiny_pairs(tmp_path / "pairs", n_train=4)
    ds = PairedImageDataset(root, "train", image_size=32)
    ds.check_files()
    assert len(ds._cache) == 4
    decoded = []
    monkeypatch.setattr(paired_module, "load_rgb", lambda path: decoded.append(path))
    for i in range(len(ds)):
        assert ds[i]["A"].shape == (3, 32, 32)
    ds.fill_cache(progress=False)
    assert decoded == []


def test_a_file_damaged_after_the_check_is_skipped_under_skip_bad_only(tmp_path):
    root = write_tiny_pairs(tmp_path / "pairs", n_train=4)
    ds = PairedImageDataset(root, "train", image_size=32, cache=False)
    ds.check_files()
    _damage_middle(root / "train" / "train_001.png")
    with pytest.raises(ValueError, match=r"train_001\.png.*--skip-bad"):
        ds[1]
    with pytest.warns(UserWarning, match="left out 1 of 4"):
        ds.check_files(skip_bad=True)  # the damage is found now; damage one more after the check
    _damage_middle(root / "train" / "train_002.png")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        items = [ds[i] for i in range(len(ds))]  # 000, 002 (-> 003), 003
        ds[1]  # said once per file
    assert [m for m in map(str, (w.message for w in caught)) if "skipped" in m] == [
        f"skipped {root / 'train' / 'train_002.png'}: {paired_module.pair_file_problem(root / 'train' / 'train_002.png')}"]
    assert [os.path.basename(i["path"]) for i in items] == ["train_000.png", "train_003.png", "train_003.png"]


@pytest.mark.filterwarnings("ignore:left out 1 of 6")
def test_train_stops_before_the_first_step_or_skips_with_skip_bad(tmp_path, capsys):
    root = write_tiny_pairs(tmp_path / "pairs", n_train=6)
    _damage_middle(root / "train" / "train_003.png")
    assert main(["train", "--data", str(root), "--out", str(tmp_path / "run"), *TINY_ARGS]) == 2
    line = [x for x in capsys.readouterr().err.splitlines() if x.startswith("error:")]
    assert len(line) == 1 and "train_003.png" in line[0] and "--skip-bad" in line[0]
    assert main(["train", "--data", str(root), "--out", str(tmp_path / "run2"), *TINY_ARGS, "--skip-bad"]) == 0
    checkpoint = torch.load(tmp_path / "run2" / "checkpoint.pt", weights_only=True)
    assert checkpoint["data"]["files"] == 5 + 2


# --- 3. PIX2PIX_CACHE_GB ------------------------------------------------------------------------
@pytest.mark.parametrize("value", ["inf", "-inf", "nan", "abc", "-1", "1e400"])
def test_a_bad_cache_size_is_one_line_naming_the_variable(tmp_path, monkeypatch, value):
    root = write_tiny_pairs(tmp_path / "pairs", n_train=2)
    monkeypatch.setenv("PIX2PIX_CACHE_GB", value)
    with pytest.raises(ValueError, match=r"PIX2PIX_CACHE_GB=.*a finite number >= 0") as err:
        PairedImageDataset(root, "train", image_size=32)
    assert _one_line(str(err.value))


def test_good_cache_sizes_are_taken(tmp_path, monkeypatch):
    root = write_tiny_pairs(tmp_path / "pairs", n_train=2)
    for value, expected in (("0", 0), ("0.5", 2**29), (" 2 ", 2 * 2**30), ("", 4 * 2**30)):
        monkeypatch.setenv("PIX2PIX_CACHE_GB", value)
        assert PairedImageDataset(root, "train", image_size=32)._cache_budget == expected


def test_cli_says_the_cache_variable_in_one_line(tmp_path, monkeypatch, capsys):
    root = write_tiny_pairs(tmp_path / "pairs", n_train=2)
    monkeypatch.setenv("PIX2PIX_CACHE_GB", "inf")
    assert main(["train", "--data", str(root), "--out", str(tmp_path / "run"), *TINY_ARGS]) == 2
    err = capsys.readouterr().err
    assert "PIX2PIX_CACHE_GB=inf" in err and "Traceback" not in err


# --- 4. the canvas's input ----------------------------------------------------------------------
GOOD = {"tool": "pen", "width": 4, "points": [[1, 2], [3.5, 4]]}
BAD_STROKES = {
    "huge int coordinate": {**GOOD, "points": [[10**400, 2]]},
    "huge negative coordinate": {**GOOD, "points": [[1, -10**400]]},
    "huge int width": {**GOOD, "width": 10**400},
    "bool coordinate": {**GOOD, "points": [[True, 2]]},
    "bool width": {**GOOD, "width": True},
    "NaN coordinate": {**GOOD, "points": [[1, float("nan")]]},
    "inf coordinate": {**GOOD, "points": [[float("inf"), 1]]},
    "NaN width": {**GOOD, "width": float("nan")},
    "inf width": {**GOOD, "width": float("inf")},
    "negative width": {**GOOD, "width": -3},
    "string width": {**GOOD, "width": "4"},
    "nested point": {**GOOD, "points": [[[1, 2], [3, 4]]]},
    "point of three": {**GOOD, "points": [[1, 2, 3]]},
    "point as dict": {**GOOD, "points": [{"x": 1, "y": 2}]},
    "string coordinate": {**GOOD, "points": [["1", 2]]},
    "None coordinate": {**GOOD, "points": [[None, 2]]},
    "points not a list": {**GOOD, "points": {"0": [1, 2]}},
    "points a string": {**GOOD, "points": "[[1, 2]]"},
    "tool a list": {**GOOD, "tool": ["pen"]},
    "no tool": {"width": 4, "points": [[1, 2]]},
}


@pytest.mark.parametrize("case", list(BAD_STROKES))
def test_every_kind_of_bad_stroke_is_a_trait_error(tiny_g, case):
    w = DoodleCanvas(tiny_g, size=64)
    for trait in ("strokes", "undone"):
        with pytest.raises(traitlets.TraitError, match="stroke 1 is not"):
            w.set_state({trait: [GOOD, BAD_STROKES[case]]})
    assert w.strokes == [] and w.undone == []


def test_strokes_that_are_no_dicts_and_good_ones(tiny_g):
    for junk in ([1, 2], "pen", None, 10**400):
        with pytest.raises(traitlets.TraitError, match="stroke 0 is not"):
            _check_strokes([junk])
    w = DoodleCanvas(tiny_g, size=64)
    far = {**GOOD, "points": [[-5000, 70000.5], [0, 0]], "width": 256}  # dragged beyond the canvas: kept
    w.set_state({"strokes": [GOOD, far]})
    assert w.strokes == [GOOD, far]


@pytest.mark.parametrize("bad", [np.full((8, 8), np.nan), np.full((8, 8, 3), np.inf, np.float32),
                                 np.where(np.eye(8) > 0, np.nan, 1.0), torch.full((1, 8, 8), float("nan"))])
def test_load_image_refuses_non_finite_arrays(tiny_g, bad):
    w = DoodleCanvas(tiny_g, size=64)
    with pytest.raises(ValueError, match="NaN or infinite") as err:
        w.load_image(bad)
    assert _one_line(str(err.value)) and w.drawing_png == b"" and w.background_png == b""


def test_a_float_image_file_with_nan_pixels_is_refused_by_name(tmp_path, tiny_g):
    Image.fromarray(np.full((8, 16), np.nan, np.float32), mode="F").save(tmp_path / "nan.tif")
    with pytest.raises(ValueError, match=r"nan\.tif: .*NaN or infinite"):
        DoodleCanvas(tiny_g, size=64).load_image(tmp_path / "nan.tif")
    with pytest.raises(ValueError, match=r"nan\.tif: .*NaN or infinite"):
        load_rgb(tmp_path / "nan.tif")


def test_junk_sketch_arrays_and_stroke_widths_are_value_errors():
    for junk in (np.array([["a", "b"], ["c", "d"]]), np.zeros((0, 0)), np.array([[1 + 2j, 0], [0, 0]])):
        with pytest.raises(ValueError, match="must hold numbers"):
            preprocess.load_gray(junk)
    for width in (10**400, True, "abc", float("nan"), None):
        with pytest.raises(ValueError, match="stroke width must be between"):
            preprocess.check_stroke_width(width, 256)
    assert preprocess.check_stroke_width(np.float32(3.5), 256) == 3.5
    for style in ({"fill": 10**400}, {"stroke_width_at_256": True, "fill": 0.8}, "junk", ["fill"],
                  {"fill": "0.8"}):
        with pytest.warns(UserWarning, match="ignoring the generator's sketch style"):
            assert preprocess.usable_style(style) is None


# --- 5. file names are shown as one printable line -------------------------------------------------
def test_messages_name_odd_files_in_one_line(tmp_path, tiny_g):
    messages = []
    bad_split = tmp_path / "root" / ODD
    with pytest.raises(FileNotFoundError) as err:
        PairedImageDataset(tmp_path / "root", ODD)
    messages.append(str(err.value))
    bad_split.mkdir(parents=True)
    with pytest.raises(FileNotFoundError) as err:
        PairedImageDataset(tmp_path / "root", ODD)
    messages.append(str(err.value))
    (bad_split / f"{ODD}.png").write_bytes(b"junk")
    Image.new("RGB", (30, 20)).save(bad_split / f"{ODD}wide.png")
    ds = PairedImageDataset(tmp_path / "root", ODD, image_size=16)
    with pytest.raises(ValueError) as err:
        ds.check_files()
    messages.append(str(err.value))
    with pytest.raises(ValueError) as err:
        ds[1]
    messages.append(str(err.value))
    with pytest.warns(UserWarning) as caught:
        with pytest.raises(ValueError) as err:
            ds.check_files(skip_bad=True)
    messages += [str(err.value), *(str(w.message) for w in caught)]
    Image.new("RGB", (4, 4)).save(tmp_path / "d.png")
    odd_doodle = tmp_path / f"{ODD}.png"
    (tmp_path / "d.png").rename(odd_doodle)
    w = DoodleCanvas(tiny_g, size=64)
    w.load_image(odd_doodle)
    messages.append(w.status)
    with pytest.raises(ValueError) as err:
        w.save(path_result=tmp_path / f"{ODD}.png")
    messages.append(str(err.value))
    for call in (lambda: imaging.open_image(tmp_path / f"{ODD}.jpg"),
                 lambda: imaging.save_image_atomic(Image.new("RGB", (2, 2)), tmp_path / f"{ODD}.xyz"),
                 lambda: report.load_results(tmp_path / f"{ODD}.json")):
        with pytest.raises((ValueError, OSError)) as err:
            call()
        messages.append(str(err.value))
    assert len(messages) == 11
    for message in messages:
        assert "\\x1b[31m" in message or "bad\\n" in message, message
        assert _one_line(message), message


def test_the_cache_full_warning_is_one_line(tmp_path, monkeypatch):
    root = tmp_path / ODD
    write_tiny_pairs(root, n_train=3)
    monkeypatch.setenv("PIX2PIX_CACHE_GB", str(2.5 * 3 * 36 * 36 * 2 / 2**30))  # room for two pairs
    ds = PairedImageDataset(root, "train", image_size=32)
    with pytest.warns(UserWarning, match="cache is full") as caught:
        ds.check_files()
    assert len(ds._cache) == 2 and all(_one_line(str(w.message)) for w in caught)


# --- 6. the data fingerprint sees content -----------------------------------------------------------
def _bmp_dataset(root, seed):
    rng = np.random.default_rng(seed)
    for split, n in (("train", 3), ("val", 1)):
        (root / split).mkdir(parents=True)
        for i in range(n):
            pixels = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
            make_pair_image(pixels, pixels[::-1]).save(root / split / f"{i}.bmp")
    return root


def test_same_names_and_sizes_different_pixels_give_different_fingerprints(tmp_path):
    one, other = _bmp_dataset(tmp_path / "one", 0), _bmp_dataset(tmp_path / "other", 1)
    sizes = {p.name: p.stat().st_size for p in (one / "train").iterdir()}
    assert sizes == {p.name: p.stat().st_size for p in (other / "train").iterdir()}
    a, b = PairedImageDataset(one, "train", image_size=16), PairedImageDataset(other, "train", image_size=16)
    assert a.fingerprint() != b.fingerprint()
    assert a.fingerprint(content=False) == b.fingerprint(content=False)  # what older checkpoints stored:
    names_sizes = "".join(f"train/{p.name}\t{p.stat().st_size}\n" for p in a.files)
    assert a.fingerprint(content=False) == hashlib.sha256(names_sizes.encode()).hexdigest()[:16]
    unchecked = a.fingerprint()
    a.check_files()  # the digests of the pre-check's reading give the same fingerprint
    assert a.fingerprint() == unchecked
    moved = tmp_path / "moved"
    one.rename(moved)
    assert PairedImageDataset(moved, "train", image_size=16).fingerprint() == unchecked


def test_resume_on_other_data_with_the_same_names_and_sizes_is_refused(tmp_path):
    one, other = _bmp_dataset(tmp_path / "one", 0), _bmp_dataset(tmp_path / "other", 1)

    def record(root):
        sets = [PairedImageDataset(root, split, image_size=16) for split in ("train", "val")]
        return sets, check_data(types.SimpleNamespace(data={}), *sets, root, skip_bad=False,
                                checkpoint=tmp_path / "checkpoint.pt")

    _, first = record(one)
    sets, _ = record(other)
    with pytest.raises(ValueError, match="cannot resume on other data"):
        check_data(types.SimpleNamespace(data=first), *sets, other, skip_bad=False, checkpoint=tmp_path / "c.pt")
    sets, _ = record(one)
    assert check_data(types.SimpleNamespace(data=first), *sets, one, skip_bad=False,
                      checkpoint=tmp_path / "c.pt")["fingerprint"] == first["fingerprint"]


def test_a_checkpoint_from_before_the_content_hash_resumes_on_its_own_data_only(tmp_path):
    """Older checkpoints stored the names-and-sizes fingerprint: their own data still resumes, other data does not."""
    one, other = _bmp_dataset(tmp_path / "one", 0), _bmp_dataset(tmp_path / "other", 1)

    def sets(root):
        found = [PairedImageDataset(root, split, image_size=16) for split in ("train", "val")]
        for dataset in found:
            dataset.check_files()
        return found

    old = {"path": str(one), "fingerprint": "-".join(s.fingerprint(content=False) for s in sets(one))}
    assert check_data(types.SimpleNamespace(data=old), *sets(one), one, skip_bad=False,
                      checkpoint=tmp_path / "c.pt")["fingerprint"] != old["fingerprint"]  # now with contents
    # Same names and sizes, other pixels: the old fingerprint cannot tell, so only its own data is accepted
    # through it, and the names-and-sizes equality is all an old checkpoint can promise.
    assert "-".join(s.fingerprint(content=False) for s in sets(other)) == old["fingerprint"]
    with pytest.raises(ValueError, match="cannot resume on other data"):
        check_data(types.SimpleNamespace(data={**old, "fingerprint": "0" * 16 + "-" + "0" * 16}), *sets(one), one,
                   skip_bad=False, checkpoint=tmp_path / "c.pt")
