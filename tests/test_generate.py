"""Sketch preprocessing, the generator weights file, colouring and the `generate` verb."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from pix2pix_lib import generate as gen
from pix2pix_lib import preprocess as pre
from pix2pix_lib import strokes, weights
from pix2pix_lib.cli import main
from pix2pix_lib.config import TrainConfig
from pix2pix_lib.strokes import estimate_stroke_width
from pix2pix_lib.models import build_generator

SIZE = 64  # preprocessing size for most tests


def doodle(*, width: int = 3, size: int = 200, offset=(0, 0), invert: bool = False) -> Image.Image:
    """A circle with a cross inside, black on white (or white on black)."""
    im = Image.new("L", (size, size), 0 if invert else 255)
    d = ImageDraw.Draw(im)
    ink = 255 if invert else 0
    ox, oy = offset
    d.ellipse([40 + ox, 40 + oy, 140 + ox, 140 + oy], outline=ink, width=width)
    d.line([(60 + ox, 90 + oy), (120 + ox, 90 + oy)], fill=ink, width=width)
    d.line([(90 + ox, 60 + oy), (90 + ox, 120 + oy)], fill=ink, width=width)
    return im


@pytest.fixture
def tiny_g():
    torch.manual_seed(0)
    return build_generator(image_size=32, ngf=4)


# ----------------------------------------------------------------------------- preprocessing
def test_preprocess_shape_range_and_every_input_kind_agree(tmp_path):
    im = doodle()
    path = tmp_path / "d.png"
    im.save(path)
    rgba = np.zeros((200, 200, 4), np.uint8)  # transparent background, opaque black strokes
    rgba[..., 3] = 255 - np.asarray(im)
    inputs = {
        "path": path, "str": str(path), "pil": im, "pil_rgb": im.convert("RGB"),
        "gray_u8": np.asarray(im), "rgb_u8": np.asarray(im.convert("RGB")),
        "float": np.asarray(im, np.float32) / 255, "rgba": rgba,
        "tensor": torch.from_numpy(np.asarray(im.convert("RGB")).copy()).permute(2, 0, 1),
        "tensor_pm1": torch.from_numpy(np.asarray(im, np.float32) / 127.5 - 1)[None],
    }
    ref = pre.preprocess_sketch(im, image_size=SIZE)
    assert ref.shape == (1, 3, SIZE, SIZE) and ref.dtype == torch.float32
    assert ref.min() >= -1 and ref.max() <= 1
    assert torch.equal(ref[:, 0], ref[:, 1]) and torch.equal(ref[:, 0], ref[:, 2])  # grayscale
    for name, x in inputs.items():
        out = pre.preprocess_sketch(x, image_size=SIZE)
        assert (out - ref).abs().mean() < 0.01, name


def test_preprocess_polarity_position_and_margin():
    ref = pre.preprocess_sketch(doodle(), image_size=SIZE)
    inverted = pre.preprocess_sketch(doodle(invert=True), image_size=SIZE)
    shifted = pre.preprocess_sketch(doodle(offset=(50, -35)), image_size=SIZE)
    assert (inverted - ref).abs().mean() < 0.01
    assert (shifted - ref).abs().mean() < 0.02  # cropped to the drawing: position does not matter
    # background stays white; the drawing fills DRAWING_FILL of the side, centred
    ink = (ref[0, 0] < 0).numpy()
    rows, cols = np.nonzero(ink)
    extent = (max(rows.max() - rows.min(), cols.max() - cols.min()) + 1) / SIZE
    assert abs(extent - pre.DRAWING_FILL) < 0.06
    assert abs((rows.min() + rows.max()) / 2 - SIZE / 2) < 2 and abs((cols.min() + cols.max()) / 2 - SIZE / 2) < 2
    assert ref[0, 0, 0, 0] == 1.0  # white corner


@pytest.mark.parametrize("width", [1, 3, 14])
def test_preprocess_normalises_stroke_width(width):
    steps = pre.preprocess_steps(doodle(width=width, size=400), image_size=128)
    target = strokes.target_stroke_width(128)
    assert abs(steps["stroke_width_after"] - target) <= 1.0, steps["stroke_width_after"]
    out_width = estimate_stroke_width(steps["normalized"] < 0.5)
    assert abs(out_width - target) <= 1.25
    for key in ("gray", "ink", "square", "resized", "normalized"):
        assert steps[key].dtype == np.float32 and 0 <= steps[key].min() and steps[key].max() <= 1


def test_explicit_stroke_width_is_honoured():
    thin = pre.preprocess_steps(doodle(), image_size=128, stroke_width=2)["stroke_width_after"]
    thick = pre.preprocess_steps(doodle(), image_size=128, stroke_width=8)["stroke_width_after"]
    assert thin < 3.5 and 6.5 < thick


@pytest.mark.parametrize("blank", [
    np.full((100, 100), 255, np.uint8),             # white
    np.zeros((100, 100), np.uint8),                 # black (a blank canvas of the other polarity)
    np.zeros((80, 80, 4), np.uint8),                # fully transparent
    np.pad(np.zeros((1, 1), np.uint8), 60, constant_values=255),  # one dark pixel
])
def test_empty_drawing_raises_a_clear_message(blank):
    with pytest.raises(ValueError, match="the drawing is empty"):
        pre.preprocess_sketch(blank, image_size=SIZE)


def test_bad_sketch_inputs(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.png"):
        pre.preprocess_sketch(tmp_path / "nope.png")
    (tmp_path / "bad.png").write_bytes(b"not an image")
    with pytest.raises(ValueError, match="bad.png"):
        pre.preprocess_sketch(tmp_path / "bad.png")
    with pytest.raises(ValueError):
        pre.preprocess_sketch(np.zeros((4, 4, 4, 4)))


# ----------------------------------------------------------------------------- weights files
def test_save_load_round_trip(tmp_path, tiny_g):
    cfg = TrainConfig(image_size=32, ngf=4).to_dict()
    card = weights.GeneratorCard.for_config(cfg, epoch=3, note="a test")
    path = weights.save_generator(tmp_path / "w" / "g.pt", tiny_g, card)
    assert not list(path.parent.glob(".*tmp"))  # the temporary file was renamed away
    raw = torch.load(path, weights_only=True)
    assert raw["format"] == weights.WEIGHTS_FORMAT
    assert raw["card"]["network"] == {"image_size": 32, "ngf": 4, "norm": "batch", "skips": True, "dropout": True,
                                      "in_channels": 3, "out_channels": 3}
    g2, loaded = weights.load_generator(path)
    assert loaded == card and loaded.image_size == 32 and not hasattr(g2, "sketch_style")
    assert not g2.training
    x = torch.randn(2, 3, 32, 32)
    tiny_g.eval()
    assert torch.equal(tiny_g(x), g2(x))


def test_the_shipped_files_of_the_first_format_load_with_their_card():
    _, card = weights.load_generator(weights.SHIPPED_SHOES)  # "pix2pix-generator/1": config + extra
    assert card.sketch_style == {"stroke_width_at_256": 1.75, "fill": 0.945, "measured_on": 64}
    assert "UT Zappos50K" in card.licence["attribution"] and card.note.startswith("Trained on edges2shoes")
    assert (card.image_size, card.epoch, card.step, card.source) == (128, 2, 900, "runs/shoes-doodle/best_generator.pt")
    assert card.metrics["l1"] == pytest.approx(0.1015, abs=1e-4)
    _, card = weights.load_generator(weights.SHIPPED_WEIGHTS)
    assert card.sketch_style is None and card.image_size == 256 and card.network["ngf"] == 24


def test_half_precision_file_is_smaller_and_loads_as_fp32(tmp_path, tiny_g):
    cfg = TrainConfig(image_size=32, ngf=4).to_dict()
    full = weights.save_generator(tmp_path / "full.pt", tiny_g, cfg)
    half = weights.save_generator(tmp_path / "half.pt", tiny_g, cfg, half=True)
    assert half.stat().st_size < 0.7 * full.stat().st_size
    g2, _ = weights.load_generator(half)
    assert all(p.dtype == torch.float32 for p in g2.parameters())
    x = torch.randn(1, 3, 32, 32)
    assert (tiny_g.eval()(x) - g2(x)).abs().max() < 2e-2


def test_load_full_training_checkpoint(tmp_path, tiny_g):
    ckpt = {"generator": tiny_g.state_dict(), "discriminator": {}, "config": TrainConfig(image_size=32, ngf=4).to_dict(),
            "epoch": 7, "best_val_l1": 0.25, "history": [{"epoch": 7, "val_l1": 0.3, "val_psnr": 12.0, "lr_g": 1e-4}]}
    torch.save(ckpt, tmp_path / "ckpt.pt")
    g2, card = weights.load_generator(tmp_path / "ckpt.pt", device="auto")
    assert (card.epoch, card.metrics, card.source) == (7, {"l1": 0.3, "psnr": 12.0}, str(tmp_path / "ckpt.pt"))
    x = torch.randn(1, 3, 32, 32)
    assert torch.equal(tiny_g.eval()(x), g2(x))


def test_load_errors_name_the_file(tmp_path, tiny_g):
    with pytest.raises(FileNotFoundError, match="missing.pt"):
        weights.load_generator(tmp_path / "missing.pt")
    (tmp_path / "garbage.pt").write_bytes(b"\x00garbage" * 50)
    with pytest.raises(ValueError, match="garbage.pt"):
        weights.load_generator(tmp_path / "garbage.pt")
    good = weights.save_generator(tmp_path / "good.pt", tiny_g, TrainConfig(image_size=32, ngf=4).to_dict())
    (tmp_path / "truncated.pt").write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(ValueError, match="truncated.pt"):
        weights.load_generator(tmp_path / "truncated.pt")
    torch.save({"weights": 1}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="other.pt: not a generator weights file"):
        weights.load_generator(tmp_path / "other.pt")
    wrong = torch.load(good, weights_only=True)
    wrong["card"]["network"]["ngf"] = 8  # the weights no longer fit
    torch.save(wrong, tmp_path / "wrong.pt")
    with pytest.raises(ValueError, match="wrong.pt: the weights do not fit"):
        weights.load_generator(tmp_path / "wrong.pt")
    with pytest.raises(ValueError, match="lack the generator"):
        weights.save_generator(tmp_path / "x.pt", tiny_g, {"ngf": 4})


# ----------------------------------------------------------------------------- colouring
def test_colorize_modes(tiny_g):
    sketch = doodle()
    a = gen.colorize(tiny_g, sketch)
    assert isinstance(a, Image.Image) and a.size == (32, 32) and a.mode == "RGB"
    assert np.array_equal(np.asarray(a), np.asarray(gen.colorize(tiny_g, sketch)))  # eval: repeatable

    running = [m.running_mean.clone() for m in tiny_g.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    tiny_g.eval()
    p1 = gen.colorize(tiny_g, sketch, mode="paper", seed=1)
    p1_again = gen.colorize(tiny_g, sketch, mode="paper", seed=1)
    p2 = gen.colorize(tiny_g, sketch, mode="paper", seed=2)
    assert np.array_equal(np.asarray(p1), np.asarray(p1_again))  # seeded dropout repeats
    assert not np.array_equal(np.asarray(p1), np.asarray(p2))    # another seed, another picture
    assert not np.array_equal(np.asarray(p1), np.asarray(a))     # batch statistics differ from running
    # generating in paper mode leaves the network as it was: eval mode, running statistics kept
    assert not tiny_g.training
    after = [m.running_mean for m in tiny_g.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert all(torch.equal(x, y) for x, y in zip(running, after))
    with pytest.raises(ValueError, match="mode must be one of"):
        gen.colorize(tiny_g, sketch, mode="train")
    bf16 = gen.colorize(tiny_g, sketch, precision="bf16")
    assert bf16.size == (32, 32)


def test_side_by_side():
    row = gen.side_by_side(Image.new("RGB", (32, 32)), Image.new("RGB", (64, 64)), gap=4)
    assert row.size == (32 + 4 + 32, 32)


# ----------------------------------------------------------------------------- command line
def test_cli_single_file_and_folder(tmp_path, tiny_g, capsys):
    weights_file = weights.save_generator(tmp_path / "g.pt", tiny_g, TrainConfig(image_size=32, ngf=4).to_dict())
    sketches = tmp_path / "sketches"
    sketches.mkdir()
    doodle().save(sketches / "a.png")
    doodle(invert=True).convert("RGB").save(sketches / "b.jpg")
    Image.new("L", (50, 50), 255).save(sketches / "blank.png")
    (sketches / "notes.txt").write_text("not an image")

    assert main(["generate", "--weights", str(weights_file), str(sketches / "a.png"), "-o", str(tmp_path / "a_out.png")]) == 0
    assert Image.open(tmp_path / "a_out.png").size == (32, 32)
    assert main(["generate", "--weights", str(weights_file), str(sketches / "a.png"), "-o", str(tmp_path / "sbs.png"),
                 "--side-by-side", "--mode", "paper", "--seed", "3"]) == 0
    assert Image.open(tmp_path / "sbs.png").size == (32 + 4 + 32, 32)

    out = tmp_path / "out"
    assert main(["generate", "--weights", str(weights_file), str(sketches), "-o", str(out)]) == 1  # blank.png failed
    assert sorted(p.name for p in out.iterdir()) == ["a.png", "b.png"]
    assert "skipped" in capsys.readouterr().out


def test_cli_errors(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(weights.SHIPPED_MODELS, "emoji", tmp_path / "weights" / "openmoji_doodle_256.pt")
    doodle().save(tmp_path / "a.png")
    assert main(["generate", str(tmp_path / "a.png"), "-o", str(tmp_path / "o.png")]) == 2
    assert "openmoji_doodle_256.pt" in capsys.readouterr().err
    assert main(["generate", "--weights", str(tmp_path / "nope.pt"), str(tmp_path / "a.png"), "-o", "o.png"]) == 2
    assert "nope.pt" in capsys.readouterr().err
    assert main(["generate", "--weights", "w.pt", "--model", "shoes", str(tmp_path / "a.png"), "-o", "o.png"]) == 2
    assert "not both" in capsys.readouterr().err


def test_generate_takes_a_shipped_model_by_name(tmp_path, capsys):
    doodle().save(tmp_path / "a.png")
    assert main(["generate", "--model", "shoes", str(tmp_path / "a.png"), "-o", str(tmp_path / "shoe.png")]) == 0
    assert Image.open(tmp_path / "shoe.png").size == (128, 128)  # the shoe generator's own size
    with pytest.raises(SystemExit):  # argparse lists the names
        main(["generate", "--model", "horses", str(tmp_path / "a.png"), "-o", str(tmp_path / "h.png")])
    assert "shoes" in capsys.readouterr().err


def test_export_cli_writes_a_half_precision_copy_that_loads_back(tmp_path):
    from pix2pix_lib import cli
    from pix2pix_lib.weights import GeneratorCard, load_generator, save_generator
    from pix2pix_lib.models import build_generator

    g = build_generator(image_size=32, ngf=8)
    settings = {"image_size": 32, "ngf": 8, "norm": "batch", "skips": True, "dropout": True}
    full = save_generator(tmp_path / "full.pt", g, GeneratorCard.for_config(settings, epoch=3))
    assert cli.main(["export", str(full), "-o", str(tmp_path / "half.pt"), "--half", "--note", "CC BY-SA 4.0"]) == 0
    half = tmp_path / "half.pt"
    assert half.stat().st_size < 0.6 * full.stat().st_size
    loaded, card = load_generator(half)
    assert (card.epoch, card.note, card.source) == (3, "CC BY-SA 4.0", str(full))
    for (name, a), b in zip(g.state_dict().items(), loaded.state_dict().values()):
        if a.is_floating_point():
            assert torch.allclose(a, b, atol=1e-3, rtol=1e-3), name


def test_a_generator_brings_doodles_to_its_own_training_sketches_style(tiny_pairs, tmp_path):
    from pix2pix_lib.train import fit, load_checkpoint

    drawing = doodle(width=9, size=300)
    default = pre.preprocess_steps(drawing, image_size=128)
    thin = pre.preprocess_steps(drawing, image_size=128, style={"stroke_width_at_256": 1.0, "fill": 0.95})
    assert thin["stroke_width_after"] < default["stroke_width_after"] - 1  # thinned to the model's width
    extent = lambda s: np.ptp((s["normalized"] < 0.5).any(axis=0).nonzero()[0]) + 1  # noqa: E731
    assert extent(thin) > extent(default) + 15  # framed like its training sketches (0.95 vs 0.77)

    fit(TrainConfig(image_size=32, ngf=8, ndf=8, patch_size=16, batch_size=2, epochs=1, epochs_decay=0,
                    precision="fp32", n_samples=2), tiny_pairs, tmp_path / "run", progress=False)
    generator, card = weights.load_generator(tmp_path / "run" / "best_generator.pt")
    style = card.sketch_style
    assert style["measured_on"] == 8 and not hasattr(generator, "sketch_style")  # on the card, not the module
    # The same generator held in memory by its TrainingState has the same card, so colours the same.
    model = load_checkpoint(tmp_path / "run" / "checkpoint.pt")
    last, last_card = weights.load_generator(tmp_path / "run" / "generator.pt")
    assert model.card() == last_card and last_card.sketch_style == style
    assert np.array_equal(np.asarray(gen.colorize(model.generator, drawing, card=model.card())),
                          np.asarray(gen.colorize(last, drawing, card=last_card)))
    assert 1.0 <= style["stroke_width_at_256"] <= 20 and 0.3 < style["fill"] < 0.8  # circles in 32 px pairs


def test_the_sketch_style_survives_export_and_bad_styles_are_ignored(tiny_pairs, tmp_path):
    from pix2pix_lib.cli import main as cli_main
    from pix2pix_lib.train import fit

    fit(TrainConfig(image_size=32, ngf=8, ndf=8, patch_size=16, batch_size=2, epochs=1, epochs_decay=0,
                    precision="fp32", n_samples=2), tiny_pairs, tmp_path / "run", progress=False)
    assert cli_main(["export", str(tmp_path / "run" / "checkpoint.pt"), "-o", str(tmp_path / "g.pt")]) == 0
    _, from_checkpoint = weights.load_generator(tmp_path / "g.pt")
    _, from_weights = weights.load_generator(tmp_path / "run" / "best_generator.pt")
    assert from_checkpoint.sketch_style == from_weights.sketch_style is not None
    drawing = doodle(size=300)
    for broken in ({"fill": 0.0}, {"fill": 0.02}, {"fill": 1.0}, {"stroke_width_at_256": 500}, {"fill": "x"}):
        with pytest.warns(UserWarning, match="ignoring the generator's sketch style"):
            steps = pre.preprocess_steps(drawing, image_size=64, style=broken)
        assert (steps["normalized"] < 0.5).any()  # the default style: a drawing, not a blank or a crash
    photos = [np.random.default_rng(i).random((64, 64)) * 0.6 for i in range(4)]  # grey noise, no line art
    assert pre.measure_sketch_style(photos) is None


def test_a_generator_travels_as_safetensors_with_its_card(tmp_path, tiny_g):
    import json
    import struct

    card = weights.GeneratorCard.for_config(TrainConfig(image_size=32, ngf=4).to_dict(), epoch=3, note="shared",
                                            sketch_style={"stroke_width_at_256": 2.0, "fill": 0.9},
                                            licence={"license": "CC BY-SA 4.0"}, metrics={"l1": 0.25})
    pt = weights.save_generator(tmp_path / "g.pt", tiny_g, card)
    st = weights.save_generator(tmp_path / "g.safetensors", tiny_g, card)
    raw = st.read_bytes()  # the standard layout: header size, JSON header with the card as metadata, tensors
    header = json.loads(raw[8:8 + struct.unpack("<Q", raw[:8])[0]])
    assert json.loads(header["__metadata__"]["card"])["note"] == "shared" and "encoder.0.0.weight" in header
    g_pt, card_pt = weights.load_generator(pt)
    g_st, card_st = weights.load_generator(st)
    assert card_st == card_pt == card
    assert all(torch.equal(a, b) for a, b in zip(g_pt.state_dict().values(), g_st.state_dict().values()))
    assert main(["export", str(pt), "-o", str(tmp_path / "half.safetensors"), "--half"]) == 0
    assert weights.load_generator(tmp_path / "half.safetensors")[1].source == str(pt)
    (tmp_path / "bad.safetensors").write_bytes(raw[:8] + raw[8:40].replace(b"{", b"[") + raw[40:])
    with pytest.raises(ValueError, match="bad.safetensors: not a usable .safetensors generator file"):
        weights.load_generator(tmp_path / "bad.safetensors")
    (tmp_path / "short.safetensors").write_bytes(raw[:-16])  # the last tensor runs past the end
    with pytest.raises(ValueError, match="short.safetensors: not a usable"):
        weights.load_generator(tmp_path / "short.safetensors")


def test_export_onnx_matches_pytorch_or_is_refused_in_one_line_without_onnx(tmp_path, tiny_g, capsys):
    import importlib.util

    path = weights.save_generator(tmp_path / "g.pt", tiny_g, TrainConfig(image_size=32, ngf=4).to_dict())
    args = ["export", str(path), "-o", str(tmp_path / "g.onnx"), "--onnx"]
    if importlib.util.find_spec("onnx") is None:
        assert main(args) == 2
        err = capsys.readouterr().err
        assert "pip install onnx" in err and "Traceback" not in err and not (tmp_path / "g.onnx").exists()
        pytest.skip("the onnx package is not installed: only the refusal was checked")
    assert main(args) == 0 and (tmp_path / "g.onnx").stat().st_size > 1000
    assert main(args) == 2  # never replaced
    if importlib.util.find_spec("onnxruntime") is None:
        pytest.skip("onnxruntime is not installed: the graph was written, not run")
    import onnxruntime

    x = torch.rand(2, 3, 32, 32) * 2 - 1
    session = onnxruntime.InferenceSession(str(tmp_path / "g.onnx"))
    with torch.no_grad():
        expected = weights.load_generator(path)[0](x).numpy()
    assert np.abs(session.run(["image"], {"sketch": x.numpy()})[0] - expected).max() < 1e-4
