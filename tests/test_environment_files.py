"""pyproject.toml (pip) and environment.yml (conda) must describe the same dependencies."""

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# conda-forge names that differ from PyPI's.
CONDA_TO_PYPI = {"pytorch": "torch"}
NOT_PACKAGES = {"python", "pip"}


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~\[; ]", requirement.strip(), maxsplit=1)[0].lower().replace("_", "-")


def pyproject_packages() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = project["dependencies"] + [r for extra in project["optional-dependencies"].values() for r in extra]
    return {_name(r) for r in reqs}


def environment_packages() -> set[str]:
    names = set()
    text = (ROOT / "environment.yml").read_text()
    for line in text.split("dependencies:", 1)[1].splitlines():
        m = re.match(r"^\s*-\s+([A-Za-z0-9_.\-]+)", line)
        if m and not line.strip().endswith(":"):
            names.add(CONDA_TO_PYPI.get(_name(m.group(1)), _name(m.group(1))))
    return names - NOT_PACKAGES


def test_pyproject_and_environment_name_the_same_packages():
    pip, conda = pyproject_packages(), environment_packages()
    assert pip == conda, f"only in pyproject.toml: {sorted(pip - conda)}; only in environment.yml: {sorted(conda - pip)}"
    assert {"torch", "torchvision", "nbval", "jupyterlab"} <= pip


def test_version_ranges_accept_the_torch_on_this_machine():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    from packaging.requirements import Requirement

    reqs = {Requirement(r).name: Requirement(r) for r in project["dependencies"]}
    assert reqs["torch"].specifier.contains("2.14.1")
    assert reqs["torchvision"].specifier.contains("0.29.1")


def test_public_api_is_complete_and_needs_no_widget_stack():
    import subprocess
    import sys

    code = ("import sys, pix2pix_lib as p; "
            "missing = [n for n in p.__all__ if n != 'DoodleCanvas' and not hasattr(p, n)]; "
            "assert not missing, missing; assert 'anywidget' not in sys.modules, 'canvas imported eagerly'; "
            "p.DoodleCanvas; assert 'anywidget' in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


def test_the_wheel_carries_every_module_the_canvas_files_and_the_example_doodles(tmp_path):
    # A plain `pip install .` (not editable) gets only what the wheel holds.
    import shutil
    import subprocess
    import sys
    import zipfile

    # Built from a copy: a build/ folder left in the checkout would hide files the rules miss.
    source = tmp_path / "source"
    shutil.copytree(ROOT / "pix2pix_lib", source / "pix2pix_lib", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md", "LICENSE", "NOTICE"):
        shutil.copy(ROOT / name, source / name)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                    "-w", str(tmp_path / "dist"), str(source)], check=True, timeout=300, cwd=source)
    (wheel,) = (tmp_path / "dist").glob("*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    package = ROOT / "pix2pix_lib"
    expected = {p.relative_to(ROOT).as_posix() for p in package.rglob("*")
                if p.suffix in (".py", ".js", ".css") or (p.is_file() and "assets" in p.parts)}
    assert len([n for n in expected if n.startswith("pix2pix_lib/assets/doodles/")]) >= 6
    assert expected <= names, sorted(expected - names)
