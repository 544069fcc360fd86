"""Grading that grades: the checks fail their cell only when graded, and real nbgrader scores the exercises.

The loop a teacher runs, in a course folder of its own with the shipped tools/nbgrader_config.py:
generate_assignment (the student version), a right and a wrong submission, autograde, the scores.
Needs nbgrader (the test extra); without it the loop is skipped with the reason, except under CI
(env CI set), where it fails.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pix2pix_lib import checks, course

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = "02_model_architecture.ipynb"


def test_a_failed_check_raises_only_when_graded(monkeypatch, capsys):
    bad, good = checks.Check("down_block", "the encoder uses LeakyReLU(0.2), not ReLU"), checks.Check("up_block")
    for name in ("NBGRADER_EXECUTION", "PIX2PIX_GRADING"):
        monkeypatch.delenv(name, raising=False)
    checks.graded(bad, good)  # a student stepping through: nothing raised (the check printed its line)
    for env in ({"NBGRADER_EXECUTION": "autograde"}, {"NBGRADER_EXECUTION": "validate"}, {"PIX2PIX_GRADING": "1"}):
        with monkeypatch.context() as m:
            for name, value in env.items():
                m.setenv(name, value)
            with pytest.raises(AssertionError) as raised:
                checks.graded(good, bad)
            assert str(raised.value) == "✗ down_block: the encoder uses LeakyReLU(0.2), not ReLU"  # the same one line
            checks.graded(good)  # passing checks never raise
    monkeypatch.setenv("NBGRADER_EXECUTION", "autograde")
    monkeypatch.setenv("PIX2PIX_GRADING", "0")  # the teacher's off switch
    checks.graded(bad)
    assert capsys.readouterr().out == ""


def test_every_check_cell_is_graded_and_ends_with_graded():
    for name, points in ((NOTEBOOK, 6), ("03_training.ipynb", 5)):
        nb = json.loads((ROOT / "notebooks" / name).read_text())
        meta = [(c["metadata"]["nbgrader"], "".join(c["source"])) for c in nb["cells"] if "nbgrader" in c["metadata"]]
        tests = [(m, s) for m, s in meta if m["grade"]]
        assert tests and all(not m["solution"] and m["locked"] and m["points"] > 0 for m, _ in tests)
        assert all(s.splitlines()[-1].startswith("checks.graded(") for _, s in tests)
        assert sum(m["points"] for m, _ in tests) == points
        assert all(m["solution"] and not m["grade"] for m, _ in meta if not m["grade"])


def test_the_library_source_is_printed_only_after_exercise_1s_check():
    cells = ["".join(c["source"]) for c in json.loads((ROOT / "notebooks" / NOTEBOOK).read_text())["cells"]]
    shown = next(i for i, s in enumerate(cells) if "inspect.getsource(p2p.models.DownBlock)" in s)
    check = next(i for i, s in enumerate(cells) if "checks.check_down_block(down_block)" in s)
    assert shown == check + 1


def test_course_dir_override_and_no_clone_runs_while_grading(tmp_path, monkeypatch):
    monkeypatch.delenv("PIX2PIX_COURSE_DIR", raising=False)
    monkeypatch.delenv("NBGRADER_EXECUTION", raising=False)
    elsewhere = tmp_path / "autograded" / "alice" / "ps1"
    elsewhere.mkdir(parents=True)
    assert course.course_root(elsewhere) == ROOT  # a student of an editable install: the clone, as before
    monkeypatch.setenv("NBGRADER_EXECUTION", "autograde")
    assert course.course_root(elsewhere) == elsewhere.resolve()  # grading: the submission's own folder
    assert course.course_root(ROOT / "notebooks") == ROOT  # inside the clone it is still the clone
    monkeypatch.setenv("PIX2PIX_COURSE_DIR", str(tmp_path / "mine"))
    assert course.course_root(elsewhere) == (tmp_path / "mine").resolve()
    assert course.course_root(ROOT / "notebooks") == (tmp_path / "mine").resolve()


def _nbgrader_or_skip():
    try:
        import nbgrader  # noqa: F401
    except ImportError:
        reason = "nbgrader is not installed (pip install -e '.[test]')"
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the nbgrader loop, but {reason}")
        pytest.skip(reason)


def _set_solution(nb: dict, grade_id: str, old: str, new: str) -> None:
    cell = next(c for c in nb["cells"] if c["metadata"].get("nbgrader", {}).get("grade_id") == grade_id)
    source = "".join(cell["source"])
    assert old in source, f"{old!r} is not in the solution any more"
    cell["source"] = source.replace(old, new, 1).splitlines(keepends=True)


@pytest.mark.slow
def test_nbgrader_release_autograde_scores_right_full_and_wrong_less(tmp_path, monkeypatch):
    _nbgrader_or_skip()
    # nbgrader runs `alembic` (its dependency) from PATH: the venv's bin first, as an activated venv has it.
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    from nbgrader.api import Gradebook

    root = tmp_path / "grading"  # outside the clone: course_root must not hand out the clone's runs/
    (root / "source" / "ps1").mkdir(parents=True)
    shutil.copy(ROOT / "tools" / "nbgrader_config.py", root / "nbgrader_config.py")
    shutil.copy(ROOT / "notebooks" / NOTEBOOK, root / "source" / "ps1" / NOTEBOOK)
    env = {k: v for k, v in os.environ.items() if k not in ("PIX2PIX_GRADING", "PIX2PIX_COURSE_DIR", "PIX2PIX_FAST")}

    def nbgrader(*args):
        run = subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=root, env=env, capture_output=True,
                             text=True, timeout=900)
        assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
        return run.stdout + run.stderr

    nbgrader("db", "assignment", "add", "ps1")
    nbgrader("generate_assignment", "ps1", "--force")
    released = json.loads((root / "release" / "ps1" / NOTEBOOK).read_text())
    text = json.dumps(released)
    assert "BEGIN SOLUTION" not in text and "raise NotImplementedError()" in text
    assert "inspect.getsource(p2p.models.DownBlock)" in text  # still there, after the check
    assert "## Questions" in text and "Model answers" not in text  # the questions go out, their answers do not

    source = json.loads((root / "source" / "ps1" / NOTEBOOK).read_text())
    wrong = json.loads(json.dumps(source))
    _set_solution(wrong, "ex1_blocks", "nn.LeakyReLU(0.2)", "nn.ReLU()")                # exercise 1: 2 points lost
    _set_solution(wrong, "ex3_field", "(field - 1) * stride + kernel", "field + kernel - 1")  # exercise 3: 1 lost
    for student, nb in (("right", source), ("wrong", wrong), ("blank", released)):
        folder = root / "submitted" / student / "ps1"
        folder.mkdir(parents=True)
        (folder / NOTEBOOK).write_text(json.dumps(nb, indent=1, ensure_ascii=False))
        nbgrader("db", "student", "add", student)
    nbgrader("autograde", "ps1", "--force")

    with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gradebook:
        scores = {s: (gradebook.find_submission("ps1", s).score, gradebook.find_submission("ps1", s).max_score)
                  for s in ("right", "wrong", "blank")}
    print(scores)
    assert scores["right"] == (6, 6)
    assert scores["wrong"] == (3, 6)  # exercise 2 keeps its 3 points: it went on with the library's blocks
    assert scores["blank"] == (0, 6)
    graded = json.loads((root / "autograded" / "wrong" / "ps1" / NOTEBOOK).read_text())
    errors = [o for c in graded["cells"] for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert [e["ename"] for e in errors] == ["AssertionError"] * 2
    assert "✗ down_block: the encoder uses LeakyReLU(0.2), not ReLU" in errors[0]["evalue"]
    assert not (ROOT / "runs" / "autograded").exists()
