"""Figures for training and the notebooks (pix2pix_lib/viz.py), drawn with the Agg backend."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

from pix2pix_lib.viz import (as_display_array, draw_box, draw_receptive_field, plot_loss_curves,  # noqa: E402
                             plot_skip_comparison, show_images, show_patch_scores)
from pix2pix_lib.imaging import make_sample_grid  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.mark.parametrize("n", [1, 3])
def test_sample_grid_has_one_row_of_three_per_example(n):
    x = torch.zeros(n, 3, 16, 16)
    grid = make_sample_grid(x - 1, x, x + 1)   # black | grey | white
    assert grid.size == (3 * 16 + 4 * 2, n * 16 + (n + 1) * 2)  # make_grid pads by 2 all round
    pixels = np.asarray(grid)
    assert tuple(pixels[2 + 8, 2 + 8]) == (0, 0, 0)          # first column: the input
    assert tuple(pixels[2 + 8, 2 + 18 + 8]) == (128, 128, 128)
    assert tuple(pixels[2 + 8, 2 + 36 + 8]) == (255, 255, 255)


def test_as_display_array_converts_tensors_from_minus_one_to_one():
    t = torch.full((3, 4, 5), -1.0)
    t[:, 0, 0] = 1.0
    array = as_display_array(t)
    assert array.shape == (4, 5, 3) and array.dtype == np.uint8
    assert array[0, 0].tolist() == [255, 255, 255] and array[1, 1].tolist() == [0, 0, 0]
    with pytest.raises(ValueError, match="image"):
        as_display_array(np.zeros(3))


def test_receptive_field_square_is_drawn_where_expected():
    image = Image.new("RGB", (64, 64), "white")
    out = draw_receptive_field(image, 16, center=(20, 30), color=(255, 0, 0), width=1)
    assert out.size == image.size and out is not image
    assert np.asarray(image).min() == 255                      # original untouched
    pixels = np.asarray(out)
    red = np.all(pixels == (255, 0, 0), axis=-1)
    ys, xs = np.nonzero(red)
    assert (xs.min(), xs.max(), ys.min(), ys.max()) == (12, 27, 22, 37)  # a 16x16 outline
    assert not red[30, 20]                                     # hollow: the centre is untouched
    assert red.sum() == 4 * 16 - 4


def test_receptive_field_defaults_to_centre_and_clips_at_edges():
    image = torch.zeros(3, 32, 32)
    out = draw_receptive_field(image, 70, color=(0, 255, 0), width=1)  # larger than the image
    assert out.size == (32, 32)
    assert not np.all(np.asarray(out) == (0, 255, 0), axis=-1).any()  # every edge lies outside
    box = draw_box(image, (-5, -5, 10, 10), color=(0, 0, 255), width=1)
    blue = np.all(np.asarray(box) == (0, 0, 255), axis=-1)
    assert blue[9, 0] and blue[0, 9] and not blue[0, 0]        # right and bottom edges only
    with pytest.raises(ValueError):
        draw_receptive_field(image, 0)


def test_patch_score_heat_map_shows_image_map_and_overlay():
    image = torch.zeros(3, 64, 64)
    scores = torch.linspace(0, 1, 36).reshape(1, 1, 6, 6)
    fig = show_patch_scores(image, scores, title="D", label="P(real)")
    image_axes = [ax for ax in fig.axes if ax.get_label() != "<colorbar>"]
    assert len(image_axes) == 3 and len(fig.axes) == 4          # three panels and a colour bar
    heat = image_axes[1].images[0].get_array()
    assert heat.shape == (6, 6) and np.allclose(heat, scores[0, 0].numpy())
    assert image_axes[1].get_title() == "output map 6x6"
    overlay = image_axes[2].images
    assert len(overlay) == 2 and overlay[1].get_extent() == [0, 64, 64, 0]  # map stretched over the image
    assert fig._suptitle.get_text() == "D"
    assert fig.axes[-1].get_ylabel() == "P(real)"
    with pytest.raises(ValueError, match="score map"):
        show_patch_scores(image, torch.zeros(2, 1, 6, 6))


def test_show_images_titles_and_grid():
    images = [Image.new("RGB", (8, 8)), torch.zeros(3, 8, 8), np.zeros((8, 8))]
    fig = show_images(images, ["a", "b", "c"], ncols=2)
    assert len(fig.axes) == 4                                     # 2x2 grid, last one empty
    assert [ax.get_title() for ax in fig.axes] == ["a", "b", "c", ""]
    assert [len(ax.images) for ax in fig.axes] == [1, 1, 1, 0]
    with pytest.raises(ValueError, match="titles"):
        show_images(images, ["a"])


def test_skip_comparison_reports_l1_and_zooms():
    target = torch.ones(3, 16, 16)
    outputs = {"U-Net": torch.ones(3, 16, 16), "encoder-decoder": torch.zeros(3, 16, 16)}
    fig = plot_skip_comparison(-target, target, outputs, curves={"U-Net": [1.0, 0.5], "encoder-decoder": [1.0, 0.9]},
                               zoom=(4, 4, 12, 12))
    titles = [ax.get_title() for ax in fig.axes]
    assert titles[:8:2] == ["input A", "U-Net\nL1 0.000", "encoder-decoder\nL1 0.996", "target B"]  # 0 shows as grey 128
    assert titles[1] == "zoom" and fig.axes[1].images[0].get_array().shape[:2] == (8, 8)
    curve_ax = fig.axes[-1]
    assert [line.get_label() for line in curve_ax.lines] == ["U-Net", "encoder-decoder"]
    assert curve_ax.get_yscale() == "log"


def test_loss_curves_plot_every_value():
    ax = plot_loss_curves({"a": [3.0, 2.0, 1.0]}, logy=False)
    x, y = ax.lines[0].get_data()
    assert list(x) == [1, 2, 3] and list(y) == [3.0, 2.0, 1.0]


def test_training_monitor_draws_each_epoch_and_leaves_pyplot_alone():
    import matplotlib.pyplot as plt
    from PIL import Image

    from pix2pix_lib.viz import TrainingMonitor
    from pix2pix_lib.train import EpochReport

    history = [{"epoch": e, "loss_D_real": 0.6, "loss_D_fake": 0.7, "loss_G_gan": 0.8, "loss_G_L1": 0.4 / e,
                "val_l1": 0.3 / e} for e in (1, 2)]
    monitor = TrainingMonitor(baseline_l1=0.3)
    figures = plt.get_fignums()
    plt.ion()  # as in a notebook: pyplot figures show themselves, and must go on doing so after training
    try:
        for row in history:
            monitor(EpochReport(int(row["epoch"]), 2, 10, {}, {"l1": row["val_l1"]}, 1.0, 8.0,
                                Image.new("RGB", (96, 32), "white"), None, True, history[: int(row["epoch"])]))
        assert plt.isinteractive() and plt.get_fignums() == figures
    finally:
        plt.ioff()
    curves, l1, samples = monitor.figure.axes
    assert [list(line.get_ydata()) for line in l1.lines][:2] == [[0.2, 0.1], [0.3, 0.15]]  # train L1 halved, val
    assert "epoch 2/2" in samples.get_title()


def test_credit_line_sits_under_the_figure():
    from PIL import Image

    from pix2pix_lib.viz import credit, show_images

    fig = show_images([Image.new("RGB", (8, 8))], ["x"])
    assert credit(fig, "OpenMoji, CC BY-SA 4.0") is fig
    (text,) = [t for t in fig.texts if t.get_text() == "OpenMoji, CC BY-SA 4.0"]
    assert text.get_position()[1] == 0.0 and text.get_va() == "top"


def test_pil_to_tensor_composites_transparency_on_white_and_scales_16_bit():
    import numpy as np
    from PIL import Image

    from pix2pix_lib.imaging import pil_to_tensor

    clear = Image.new("RGBA", (4, 4), (0, 0, 0, 0))  # a transparent sketch background
    clear.putpixel((1, 1), (0, 0, 0, 255))           # one black stroke pixel
    x = pil_to_tensor(clear)
    assert x.shape == (3, 4, 4) and x[:, 1, 1].tolist() == [-1, -1, -1] and x[:, 0, 0].tolist() == [1, 1, 1]
    deep = Image.fromarray(np.array([[0, 32768, 65535]], dtype=np.uint16))  # 16-bit gray
    assert pil_to_tensor(deep)[0, 0].tolist() == pytest.approx([-1, 0, 1], abs=0.01)


def test_credit_band_wraps_the_text_under_the_image():
    from PIL import Image

    from pix2pix_lib.imaging import credit_band

    image = Image.new("RGB", (120, 50), "red")
    out = credit_band(image, "All emojis designed by OpenMoji – the open-source emoji and icon project")
    assert out.width == 120 and out.height > 50 + 2 * 14  # several lines at this width
    assert out.crop((0, 0, 120, 50)).getcolors() == [(120 * 50, (255, 0, 0))]  # the image is untouched
    band = out.crop((0, 50, 120, out.height)).convert("L")
    assert band.getextrema()[0] < 128  # there is dark text in the band


def test_sample_grid_tile_cuts_back_each_image():
    import numpy as np
    import torch

    from pix2pix_lib.imaging import make_sample_grid, sample_grid_tile

    a, f, b = (torch.full((2, 3, 8, 8), v) for v in (-1.0, 0.0, 1.0))
    b[1] = -1.0
    grid = np.asarray(make_sample_grid(a, f, b))
    assert sample_grid_tile(grid, 0, 0).shape == (8, 8, 3)
    assert (sample_grid_tile(grid, 0, 0) == 0).all() and (sample_grid_tile(grid, 0, 2) == 255).all()
    assert (sample_grid_tile(grid, 1, 1) == 128).all() and (sample_grid_tile(grid, 1, 2) == 0).all()
    with pytest.raises(IndexError, match="2 rows"):
        sample_grid_tile(grid, 2, 0)
