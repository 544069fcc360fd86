"""The notebooks' computed claims, checked at full size.

nbval executes every notebook in fast mode, where the tiny runs give other numbers. Here the functions
that turn numbers into sentences are taken from their notebook cells (the functions alone, compiled
from the cell's source) and run on the committed results, or on the full-size toy GANs of notebook 04.
"""

from __future__ import annotations

import ast
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import pix2pix_lib as p2p
from pix2pix_lib import report

ROOT = Path(__file__).resolve().parents[1]


def cell_functions(notebook: str, *cell_ids: str, **namespace) -> dict:
    """The functions (and module-level constants) some notebook cells define; their other statements do not run."""
    nb = json.loads((ROOT / "notebooks" / notebook).read_text())
    cells = {c.get("id"): "".join(c["source"]) for c in nb["cells"]}
    source = "\n\n".join(cells[cell_id] for cell_id in cell_ids)
    tree = ast.parse(source)
    keep = (ast.FunctionDef, ast.Import, ast.ImportFrom)
    tree.body = [node for node in tree.body if isinstance(node, keep)
                 or (isinstance(node, ast.Assign) and all(isinstance(t, ast.Name) and t.id.isupper() for t in node.targets))]
    scope = {"math": math, "np": np, "torch": torch, "F": F, "nn": nn, "Path": Path, "p2p": p2p, **namespace}
    exec(compile(tree, f"{notebook}{list(cell_ids)}", "exec"), scope)
    return scope


def failure_claims(*args):
    return cell_functions("04_gan_dynamics.ipynb", "nb04lab-15-losses", "nb04lab-15-claims")["failure_claims"](*args)


def test_04_gallery_claims_read_the_committed_results():
    failures = report.load_results(ROOT / "results" / "failures.json")
    claims = failure_claims(failures, None)
    assert claims[0].startswith("paper objective: val L1 0.058")
    # D 10x faster: the same L1 as the paper objective, colours further from the targets'; no losses in the file.
    assert "the same as the paper objective's" in claims[1] and "further from the targets' 1" in claims[1]
    assert "not in the results file" in claims[1]
    # ... so D is judged by what G learned from it: the same L1, so not a stronger D (computed, not typed).
    assert "by what G learned from it, a faster D is not a stronger one" in claims[1]
    better = json.loads(json.dumps(failures))
    next(v for v in better["variants"] if v["variant"] == "D 10x faster")["metrics"]["l1"] *= 0.9
    assert "here the faster D was a stronger teacher" in failure_claims(better, None)[1]
    assert "the best of all runs" in claims[2]
    assert all("worse than copying the sketch" in c for c in claims[3:5])
    assert "the least sharp of all runs" in claims[6]


def write_steps(folder: Path, d_real: float, d_fake: float, g_gan: float = 1.0) -> None:
    folder.mkdir(parents=True)
    rows = [f"{s},{s / 10},1,{g_gan},0.3,{d_real},{d_fake}" for s in range(1, 11)]
    (folder / "steps.csv").write_text("step,epoch,steps,loss_G_gan,loss_G_L1,loss_D_real,loss_D_fake\n" + "\n".join(rows) + "\n")


@pytest.mark.parametrize("faster_d, says", [((0.60, 0.53), "a faster D is not a stronger one"),
                                            ((0.10, 0.08), "here the faster D did pull ahead")])
def test_04_gallery_claims_follow_the_runs_losses(tmp_path, faster_d, says):
    failures = report.load_results(ROOT / "results" / "failures.json")
    for row in failures["variants"]:
        losses = {"paper objective": (0.49, 0.43), "D 10x faster": faster_d, "lambda 1000": (0.15, 0.18)}
        write_steps(tmp_path / row["run"], *losses.get(row["variant"], (0.5, 0.5)), g_gan=3.9 if row["variant"] == "lambda 1000" else 1.0)
    claims = failure_claims(failures, tmp_path)
    assert "D's losses 0.49 (real) / 0.43 (fake)" in claims[0] and "D below log 2" in claims[0]
    assert says in claims[1]
    assert ("D's lowest of the gallery: D wins" in claims[2]) == (faster_d[0] > 0.3)


def test_04_dirac_gan_plain_steps_spiral_slowly_and_r1_goes_straight_in():
    scope = cell_functions("04_gan_dynamics.ipynb", "nb04lab-07")
    turns = {r1: scope["winding"](scope["dirac_gan"](600, r1=r1)) for r1 in (0.0, 1.0)}  # full size: 600 steps
    plain, r1 = turns[0.0], turns[1.0]
    assert plain[0] > 3 and plain[2] > 0.2  # several turns, still well away from the equilibrium
    assert r1[0] < 0.5 and r1[2] < 1e-6     # almost straight in, and there


def test_04_ring_gan_the_collapsed_run_ends_closest_to_log_2():
    scope = cell_functions("04_gan_dynamics.ipynb", "nb04lab-03", "nb04lab-03-train")
    final = {}
    for name, lr_d in (("balanced", 1e-3), ("weak D", 1e-4)):  # the notebook's two runs, at full size
        shots, losses = scope["train_toy_gan"](1e-3, lr_d, 2000, [2000])
        final[name] = (scope["modes_covered"](shots[2000]), losses[-200:, 0].mean())
    assert final["balanced"][0] > final["weak D"][0]
    assert abs(final["weak D"][1] - math.log(2)) < abs(final["balanced"][1] - math.log(2)), final


def test_06_claims_on_closer_to_1_metrics_say_what_their_verdict_tests():
    scope = cell_functions("06_experiments.ipynb", "e40f8b06", report=report)
    results = report.load_results(ROOT / "results" / "ablations.json")
    values = {v["variant"]: v["metrics"] for v in results["variants"]}
    checks = [scope["worded_as_tested"](c) for c in report.paper_checks(results)]
    for check in checks:
        if check["metric"] in ("sharpness", "colourfulness") and check["agrees"] is not None:
            better, worse = check["expected"].split(" better than ")
            assert check["claim"].startswith(f"{better} is closer to the targets' {check['metric']} than {worse}")
            closer = abs(values[better][check["metric"]] - 1) < abs(values[worse][check["metric"]] - 1)
            assert check["agrees"] == closer  # the sentence and its tick agree
    sentence = scope["proxies_sentence"](results)
    assert "8 of 9 variants sit above 1" in sentence and "encoder-decoder (sharpness 0.42)" in sentence
    assert "overshoots less" in sentence  # every objective sits above the targets on both proxies
    blurry = json.loads(json.dumps(results))
    next(v for v in blurry["variants"] if v["variant"] == "L1 only")["metrics"]["sharpness"] = 0.8
    assert "overshoots less" not in scope["proxies_sentence"](blurry)


def test_07_the_shipped_shoe_generators_colour_and_age_are_computed_not_typed():
    import colorsys

    scope = cell_functions("07_photos.ipynb", "nb06-07", "nb07-colours", colorsys=colorsys)  # colour_name, PAPER_STEPS
    names = {scope["colour_name"](c) for c in ((104, 92, 74), (90, 80, 66))}
    assert names == {"dull brown"}  # the shipped generator's median colour (printed by the notebook), and a darker one
    assert scope["colour_name"]((225, 159, 178)) == "dull pink" and scope["colour_name"]((37, 53, 94)) == "blue"
    _, card = p2p.load_generator(p2p.weights.SHIPPED_SHOES)
    assert card.step / scope["PAPER_STEPS"] < 0.1  # "an early generator", as the printout says


def test_07_the_trained_photo_models_summary_is_computed_from_its_numbers():
    scope = cell_functions("07_photos.ipynb", "nb07-trained")
    white, shoe = torch.ones(3, 16, 16), torch.ones(3, 16, 16)
    shoe[:, 4:12, 2:14] = -0.5  # a grey object on white
    assert scope["silhouette_iou"](shoe[None], shoe[None]) == 1.0
    assert scope["silhouette_iou"](white[None], shoe[None]) == 0.0  # a blank output has no shoe in it
    half = shoe.clone()
    half[:, 4:12, 8:14] = 1  # the left half of the object
    assert scope["silhouette_iou"](half[None], shoe[None]) == pytest.approx(0.5)
    config = p2p.preset("quick", image_size=64, epochs=50, epochs_decay=50, max_minutes=10)
    history = [{"epoch": 1, "val_l1": 0.20}, {"epoch": 2, "val_l1": 0.09}, {"epoch": 3, "val_l1": 0.10}]
    text = scope["run_summary"](history, 0.13, 0.71, config)
    assert text.startswith("best validation L1 0.090 at epoch 2, better than copying the sketch (0.130)")
    assert "silhouette IoU with the photos 0.71" in text and "budget stopped it after epoch 3 of 100" in text
    done = [*history, {"epoch": 100, "val_l1": 0.15}]
    text = scope["run_summary"](done, 0.05, 0.5, config)
    assert "no better than copying the sketch" in text and "all 100 epochs done" in text


def test_07_white_outside_the_drawing_counts_paint_around_the_drawn_car():
    """What 07 (and benchmarks/doodle_robustness.py) call 'white outside the drawing': strokes.white_outside_ink."""
    seen = np.full((64, 64, 3), 255, np.uint8)
    seen[20:44, [16, 47]] = seen[[20, 43], 16:48] = 0  # a drawn box
    clean = seen.copy()
    clean[21:43, 17:47] = (200, 30, 30)  # painted inside the drawing only
    slab = clean.copy()
    slab[44:60, :] = (90, 100, 120)  # a blue-grey slab under it, across the paper
    ink = seen.min(axis=2) < 128
    assert p2p.strokes.white_outside_ink(ink, clean) == 1.0
    share = p2p.strokes.white_outside_ink(ink, slab)
    outside = 64 * 64 - (24 + 2 * 1 + 1) * (32 + 2 * 1 + 1)  # about: the hull widened by one pixel
    assert share == pytest.approx(1 - 16 * 64 / outside, abs=0.03)


def test_01_the_synthetic_studio_shot_puts_the_car_before_the_letters_and_its_mask_is_found():
    import cv2

    scope = cell_functions("01_dataset_preparation.ipynb", "nb01-masks-tools", "nb01-masks-studio", cv2=cv2)
    rgba = p2p.data.render_openmoji("1F697", size=300, background=None)
    ys, xs = np.nonzero(rgba[..., 3])
    photo, truth = scope["studio_shot"](rgba[ys.min(): ys.max() + 1, xs.min(): xs.max() + 1])
    letters = (photo.max(axis=2) < 150) & ~truth
    assert letters.any() and truth.any(axis=1)[np.nonzero(letters.any(axis=1))[0]].any()  # the roof reaches them
    mask, problem = p2p.data.masks.auto_mask(photo)
    assert problem is None and scope["iou"](mask, truth) > 0.9  # what the notebook prints, at full size too
    assert scope["iou"](truth, truth) == 1.0 and scope["iou"](truth, ~truth) == 0.0
