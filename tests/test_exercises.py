"""The exercises: every check passes the notebooks' own solutions and catches realistic mistakes,
and the student notebooks (`make student`) run to the end saying "not implemented yet" once per check.

The solutions are read from the notebooks themselves (the cells between nbgrader's markers), so a
notebook whose solution stops passing its check fails here, not in front of a class.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import pix2pix_lib as p2p
from pix2pix_lib import checks

ROOT = Path(__file__).resolve().parents[1]


def solutions(notebook: str) -> dict[str, str]:
    """grade_id -> source of every solution cell of a notebook."""
    nb = json.loads((ROOT / "notebooks" / notebook).read_text())
    return {c["metadata"]["nbgrader"]["grade_id"]: "".join(c["source"]) for c in nb["cells"]
            if c["metadata"].get("nbgrader", {}).get("solution")}


NB02, NB03 = solutions("02_model_architecture.ipynb"), solutions("03_training.ipynb")


def define(source: str, **names) -> dict:
    """Run a solution cell (as the notebook would, after its imports) and return what it defined."""
    namespace = {"torch": torch, "nn": nn, "F": F, "p2p": p2p,
                 "down": checks.library_down_block, "up": checks.library_up_block, **names}
    exec(compile(source, "<exercise>", "exec"), namespace)  # noqa: S102 - the course's own notebook code
    return namespace


def mutate(source: str, old: str, new: str) -> str:
    assert old in source, f"the mutant's target {old!r} is not in the solution any more"
    return source.replace(old, new, 1)


def test_the_notebooks_solutions_pass_their_checks(capsys):
    blocks = define(NB02["ex1_blocks"])
    assert checks.check_down_block(blocks["down_block"]) and checks.check_up_block(blocks["up_block"])
    # The U-Net built from the notebook's own blocks, as exercise 2 does when exercise 1 passed.
    assert checks.check_unet(define(NB02["ex2_unet"], down=blocks["down_block"], up=blocks["up_block"])["MyUNet"])
    assert checks.check_receptive_field(define(NB02["ex3_field"])["my_receptive_field"])
    losses = define(NB03["ex4_losses"])
    assert checks.check_gan_loss(losses["gan_loss"])
    assert checks.check_discriminator_loss(losses["discriminator_loss"])
    assert checks.check_generator_loss(losses["generator_loss"])
    assert checks.check_training_step(define(NB03["ex5_step"], **losses)["training_step"])
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 8 and all(line.startswith("✓ ") for line in lines), lines


MUTANTS = [  # (exercise, check, function name, old, new, what the check must say)
    ("ex1_blocks", "check_down_block", "down_block", "stride=2, padding=1, bias=False)]", "stride=1, padding=1, bias=False)]",
     "halves H and W"),
    ("ex1_blocks", "check_down_block", "down_block", "padding=1, bias=False)]", "padding=1, bias=True)]", "off by +16"),
    ("ex1_blocks", "check_down_block", "down_block", "nn.LeakyReLU(0.2)", "nn.ReLU()", "LeakyReLU(0.2), not ReLU"),
    ("ex1_blocks", "check_down_block", "down_block", "nn.LeakyReLU(0.2)", "nn.LeakyReLU(0.02)", "slope 0.2"),
    ("ex1_blocks", "check_up_block", "up_block", "nn.Dropout(0.5)", "nn.Dropout(0.2)", "Dropout(0.5)"),
    ("ex1_blocks", "check_up_block", "up_block", "layers.append(nn.ReLU())", "layers.append(nn.LeakyReLU(0.2))",
     "ReLU, not LeakyReLU"),
    ("ex1_blocks", "check_up_block", "up_block", "padding=1, bias=False),\n              nn.BatchNorm2d",
     "padding=0, bias=False),\n              nn.BatchNorm2d", "doubles H and W"),
    ("ex2_unet", "check_unet", "MyUNet", "torch.cat([block(x), features[len(self.encoder) - 2 - j]], dim=1)",
     "block(x)", "concatenates a skip"),  # built for skips, but forward drops them
    ("ex2_unet", "check_unet", "MyUNet", "features[len(self.encoder) - 2 - j]", "features[len(self.encoder) - 1 - j]",
     "encoder block depth-2-j"),
    ("ex2_unet", "check_unet", "MyUNet", "channels = 2 * width", "channels = width", "reads 2x the channels"),
    ("ex2_unet", "check_unet", "MyUNet", "[block(x), features[len(self.encoder) - 2 - j]]",
     "[features[len(self.encoder) - 2 - j], block(x)]", "in the order [decoder, encoder]"),
    ("ex2_unet", "check_unet", "MyUNet", "nn.Tanh()", "nn.Identity()", "needs a Tanh"),
    ("ex2_unet", "check_unet", "MyUNet", "normalize=0 < i < depth - 1", "normalize=0 < i",
     "the paper's own errata (appendix 6.3)"),  # batch norm on the 1x1 bottleneck: PyTorch's error, named
    ("ex2_unet", "check_unet", "MyUNet", "normalize=0 < i < depth - 1", "normalize=i < depth - 1",
     "batch norm on the first encoder block"),
    ("ex2_unet", "check_unet", "MyUNet", "        p2p.models.init_weights(self)\n", "        pass\n",
     "not the paper's N(0, 0.02): call p2p.models.init_weights(self)"),
    ("ex3_field", "check_receptive_field", "my_receptive_field", "(field - 1) * stride + kernel",
     "field + kernel - 1", "r <- (r - 1) * stride + kernel"),
    ("ex3_field", "check_receptive_field", "my_receptive_field", "reversed(layers)", "layers", "walk back from the output"),
    ("ex4_losses", "check_gan_loss", "gan_loss", "1.0 if target_is_real else 0.0", "0.0 if target_is_real else 1.0",
     "the other label"),
    ("ex4_losses", "check_gan_loss", "gan_loss", "binary_cross_entropy_with_logits(logits, target)",
     "binary_cross_entropy_with_logits(torch.sigmoid(logits), target)", "sigmoid applied twice"),
    ("ex4_losses", "check_gan_loss", "gan_loss", "binary_cross_entropy_with_logits(logits, target)",
     "binary_cross_entropy_with_logits(logits, target, reduction='sum')", "their mean"),
    ("ex4_losses", "check_discriminator_loss", "discriminator_loss", "fake_b.detach()", "fake_b", "detach fake_b"),
    ("ex4_losses", "check_discriminator_loss", "discriminator_loss", "0.5 * (real + fake)", "real + fake", "halves"),
    ("ex4_losses", "check_discriminator_loss", "discriminator_loss", "D(real_a, real_b)", "D(real_b, real_a)",
     "expected"),
    ("ex4_losses", "check_generator_loss", "generator_loss", "gan_loss(D(real_a, fake_b), True)",
     "gan_loss(D(real_a, fake_b), False)", "target is real"),
    ("ex4_losses", "check_generator_loss", "generator_loss", "lambda_l1 * F.l1_loss", "F.l1_loss", "not weighted"),
    ("ex4_losses", "check_generator_loss", "generator_loss", "lambda_l1 * F.l1_loss", "100 * F.l1_loss",
     "not a hard-coded 100"),
    ("ex4_losses", "check_generator_loss", "generator_loss", "gan_loss(D(real_a, fake_b), True)",
     "-gan_loss(D(real_a, fake_b), False)", "the saturating loss"),
    ("ex4_losses", "check_generator_loss", "generator_loss", "F.l1_loss(fake_b, real_b)", "F.l1_loss(fake_b, real_a)",
     "compares fake_b with the sketch real_a"),
    ("ex4_losses", "check_generator_loss", "generator_loss", "F.l1_loss(fake_b, real_b)", "F.mse_loss(fake_b, real_b)",
     "L2 (MSE)"),
    ("ex4_losses", "check_generator_loss", "generator_loss", "D(real_a, fake_b)", "D(real_a, fake_b.detach())",
     "not fake_b.detach()"),
]


@pytest.mark.parametrize("exercise, check, name, old, new, message", MUTANTS,
                         ids=[f"{m[2]}:{m[4][:30]}" for m in MUTANTS])
def test_each_check_catches_realistic_mistakes(exercise, check, name, old, new, message, capsys):
    source = mutate({**NB02, **NB03}[exercise], old, new)
    extra = define(NB03["ex4_losses"]) if exercise == "ex4_losses" else {}
    result = getattr(checks, check)(define(source, **{k: v for k, v in extra.items() if k != name})[name])
    assert not result, f"the check passed a mutant: {old!r} -> {new!r}"
    assert message in result.problem, result.problem
    assert capsys.readouterr().out.strip() == str(result)  # one line, no traceback


def test_a_unet_without_any_skips_is_named_the_encoder_decoder(capsys):
    source = mutate(mutate(NB02["ex2_unet"], "channels = 2 * width", "channels = width"),
                    "torch.cat([block(x), features[len(self.encoder) - 2 - j]], dim=1)", "block(x)")
    result = checks.check_unet(define(source)["MyUNet"])
    assert not result and "exactly the encoder-decoder without skips" in result.problem, result.problem


STEP_MUTANTS = {  # training_step: mistakes that need more than one replacement
    "stale gradients": (lambda s: s.replace("    opt_d.zero_grad()\n", "").replace("    opt_g.zero_grad()\n", ""),
                        "zero_grad()"),
    "G before D": (lambda s: s.replace(
        "    opt_d.zero_grad()\n    loss_d = discriminator_loss(D, real_a, real_b, fake_b)\n    loss_d.backward()\n"
        "    opt_d.step()\n", "").replace(
        "    return loss_d.item()",
        "    opt_d.zero_grad()\n    loss_d = discriminator_loss(D, real_a, real_b, fake_b)\n    loss_d.backward()\n"
        "    opt_d.step()\n    return loss_d.item()"), "G was updated before D"),
    "G's loss before D's update": (lambda s: s.replace(
        "    loss_g = generator_loss(D, real_a, real_b, fake_b)  # through the updated D\n", "").replace(
        "    opt_d.zero_grad()\n", "    loss_g = generator_loss(D, real_a, real_b, fake_b)\n    opt_d.zero_grad()\n"),
        "G's loss was computed before D's update"),
    "tensors returned": (lambda s: s.replace("return loss_d.item(), loss_g.item()", "return loss_d, loss_g"),
                         "two floats"),
    "no optimiser step": (lambda s: s.replace("    opt_d.step()\n", "").replace("    opt_g.step()\n", ""),
                          "no parameter changed"),
}


@pytest.mark.parametrize("mistake", list(STEP_MUTANTS))
def test_the_training_step_check_names_the_mistake(mistake, capsys):
    change, message = STEP_MUTANTS[mistake]
    source = change(NB03["ex5_step"])
    assert source != NB03["ex5_step"]
    result = checks.check_training_step(define(source, **define(NB03["ex4_losses"]))["training_step"])
    assert not result and message in result.problem, result.problem


@pytest.mark.slow
def test_student_notebooks_run_and_every_check_says_not_implemented_yet(tmp_path, monkeypatch):
    from nbclient import NotebookClient

    course = tmp_path / "course"  # a course folder of its own: its runs/ do not meet the nbval run's
    subprocess.run([sys.executable, "-m", "pix2pix_lib", "notebooks", str(course)], check=True, cwd=ROOT)
    student = course / "student"  # inside the course folder: its course_root is the course
    subprocess.run([sys.executable, str(ROOT / "tools" / "make_student.py"), "--out", str(student)], check=True)
    # A folder of someone's own files, or the solutions themselves, are refused in one line.
    for refused in (course / "notebooks", ROOT / "notebooks"):
        run = subprocess.run([sys.executable, str(ROOT / "tools" / "make_student.py"), "--out", str(refused)],
                             capture_output=True, text=True)
        assert run.returncode == 2 and len(run.stderr.strip().splitlines()) == 1, run.stderr
    assert "BEGIN SOLUTION" in (ROOT / "notebooks" / "02_model_architecture.ipynb").read_text()
    monkeypatch.setenv("PIX2PIX_FAST", "1")  # the kernel inherits it: tiny sizes, the same code paths
    for name, checks_expected in (("02_model_architecture.ipynb", 4), ("03_training.ipynb", 4)):
        path = student / name
        nb = nbformat.read(path, as_version=4)
        assert "BEGIN SOLUTION" not in path.read_text() and "raise NotImplementedError()" in path.read_text()
        NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}).execute()
        texts = ["".join(o.get("text", "") for o in c.get("outputs", [])) for c in nb.cells if c.cell_type == "code"]
        assert not any(o.get("output_type") == "error" for c in nb.cells for o in c.get("outputs", []))
        assert not any("Traceback" in t for t in texts)
        lines = [line for t in texts for line in t.splitlines() if line.startswith(("✓", "✗"))]
        assert len(lines) == checks_expected and all("not implemented yet" in line for line in lines), lines
        assert sum(t.count("going on with the library's") for t in texts) >= 1  # the notebook went on without them
