"""The library's layers: a module imports only from layers below it, and nothing imports in a circle.

Read from the source (every import statement, function-local ones included), so a lazy import
cannot hide an upward dependency. See pix2pix_lib/__init__.py for the layers in words.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "pix2pix_lib"

# Lowest first. A unit is a top-level module or subpackage of pix2pix_lib.
LAYERS = [
    {"folders"},                                # printable names, writer and reader locks, a folder's inventory
    {"models"},                                 # the networks and the objective
    {"config", "files", "runtime", "strokes"},  # small shared facts
    {"imaging", "course", "torchfile"},         # every image and torch file read; the course's own files
    {"data", "weights", "preprocess"},          # datasets; the two file formats; any sketch -> G input
    {"metrics", "runs", "pretrained"},          # measuring; a run folder's files; the reference's weights
    {"train", "generate"},                      # the algorithm (its own folder: step, loop, checkpoint, run folder); sketch -> colour image
    {"experiments", "viz", "canvas", "checks"},  # the course's tools (checks: the exercises' graders)
    {"report"},                                 # reading the ablations back
    {"cli", "__init__"},
    {"__main__"},
]
LAYER = {unit: i for i, units in enumerate(LAYERS) for unit in units}
# Imports allowed inside functions: optional or heavy stacks a plain training run must not need.
LOCAL_IMPORTS_ALLOWED = {"anywidget", "ipywidgets", "IPython", "torch_fidelity", "torchmetrics.image.fid", "kaggle",
                         "torch.utils.tensorboard"}


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path):
    """(imported module, line, is function-local) for every import in `path` (relative ones resolved)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    module = _module_name(path)
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    top_level = {id(node) for node in tree.body}
    top_level |= {id(n) for node in tree.body if isinstance(node, ast.Try) for n in node.body + node.handlers}
    for node in ast.walk(tree):
        if isinstance(node, ast.ExceptHandler):
            continue
        local = id(node) not in top_level
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno, local
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module
            if target.startswith("pix2pix_lib") and not node.module and node.level:
                for alias in node.names:  # `from . import train`
                    yield f"{target}.{alias.name}", node.lineno, local
            else:
                yield target, node.lineno, local


def _unit(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _graph():
    graph, edges = {}, []
    for path in sorted(PACKAGE.rglob("*.py")):
        name = _module_name(path)
        unit = "__main__" if path.name == "__main__.py" else _unit(name) if name != "pix2pix_lib" else "__init__"
        graph.setdefault(name, set())
        for target, line, local in _imports(path):
            if target.startswith("pix2pix_lib"):
                graph[name].add(target)
            edges.append((path, unit, target, line, local))
    return graph, edges


def test_every_unit_has_a_layer():
    units = {p.stem if p.is_file() else p.name for p in PACKAGE.iterdir()
             if (p.suffix == ".py" or (p / "__init__.py").is_file())}
    assert units - set(LAYER) == set(), "new modules need a layer in LAYERS (and in pix2pix_lib/__init__.py)"


def test_imports_point_down_the_layers():
    _, edges = _graph()
    upward = [f"{path.relative_to(PACKAGE.parent)}:{line} ({unit}, layer {LAYER[unit]}) imports {target} "
              f"({_unit(target)}, layer {LAYER[_unit(target)]})"
              for path, unit, target, line, _ in edges
              if target.startswith("pix2pix_lib.") and _unit(target) != unit and LAYER[_unit(target)] >= LAYER[unit]]
    assert upward == []


def test_no_import_cycles():
    graph, _ = _graph()
    known = set(graph)

    def resolve(target: str) -> str | None:
        while target and target not in known:  # `pix2pix_lib.models.GANLoss` -> `pix2pix_lib.models`
            target = target.rpartition(".")[0]
        return target or None

    edges = {m: {t for t in map(resolve, targets) if t and t != m} for m, targets in graph.items()}
    # A package's __init__ importing its own modules is how a package is built, not a cycle.
    edges = {m: {t for t in ts if not t.startswith(m + ".")} for m, ts in edges.items()}
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(edges[node]):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        state[node] = 2
        stack.pop()
        return None

    for module in sorted(edges):
        if module not in state and (cycle := visit(module)):
            pytest.fail("import cycle: " + " -> ".join(cycle))


def test_no_function_local_imports_but_optional_stacks():
    _, edges = _graph()
    local = [f"{path.relative_to(PACKAGE.parent)}:{line} imports {target} inside a function"
             for path, _, target, line, is_local in edges
             if is_local and not any(target == ok or target.startswith(ok + ".") for ok in LOCAL_IMPORTS_ALLOWED)]
    assert local == []


def test_modules_stay_readable_in_one_sitting():
    long = {str(p.relative_to(PACKAGE.parent)): n for p in PACKAGE.rglob("*.py")
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > 360}
    assert long == {}


def test_the_readme_tree_is_the_real_tree():
    readme = (PACKAGE.parent / "README.md").read_text(encoding="utf-8")
    tree = readme.split("```\npix2pix_lib/\n", 1)[1].split("```", 1)[0]
    listed = set()
    for line in tree.splitlines():
        for name in line.split()[0].split(","):
            listed.add(name.strip())
        if line.split()[1:2] == ["canvas.js"]:
            listed.add("canvas.js")
    modules = {str(p.relative_to(PACKAGE)) for p in PACKAGE.rglob("*.py") if p.name not in ("__init__.py", "__main__.py")}
    assert modules - listed == set(), "modules missing from the README's tree"
    assert {m for m in listed if m.endswith(".py")} - modules == set(), "the README lists modules that do not exist"


# ----------------------------------------------------------------------------- a helper lives beside its caller
def _names_used(source: str) -> set[str]:
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return set()
    used = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            used.add(node.id)
        elif isinstance(node, ast.Attribute):
            used.add(node.attr)
        elif isinstance(node, ast.alias):
            used.add(node.name.split(".")[-1])
    return used


def _used_outside_the_library() -> set[str]:
    """Every name the tests, benchmarks, tools and notebooks use: those are callers too."""
    root, used = PACKAGE.parent, set()
    for folder in ("tests", "benchmarks", "tools"):
        for path in (root / folder).rglob("*.py"):
            used |= _names_used(path.read_text(encoding="utf-8"))
    for path in (root / "notebooks").glob("*.ipynb"):
        for cell in json.loads(path.read_text(encoding="utf-8"))["cells"]:
            if cell["cell_type"] == "code":
                used |= _names_used("".join(line for line in cell["source"] if not line.lstrip().startswith(("%", "!"))))
    return used


# Helpers only training uses that stay with their subject, and why.
STAY_WITH_THEIR_SUBJECT = {"set_requires_grad": "a network utility of models/, exported there for the lessons"}


def test_a_helper_whose_only_callers_train_lives_in_the_train_folder():
    """"A helper with one caller lives beside it", where a program can tell: the training folder.

    A function or class defined outside pix2pix_lib/train/ whose only users in the whole project are
    modules of train/ belongs in train/ (how a run resumes must not need six files). Package
    __init__ files only pass names on; they are no users.
    """
    modules = {path: path.read_text(encoding="utf-8") for path in PACKAGE.rglob("*.py")}
    users: dict[str, set[Path]] = {}
    for path, source in modules.items():
        if path.name != "__init__.py":
            for name in _names_used(source):
                users.setdefault(name, set()).add(path)
    outside, train_dir, misplaced = _used_outside_the_library(), PACKAGE / "train", []
    for path, source in modules.items():
        if path.name == "__init__.py" or train_dir in path.parents:
            continue
        for node in ast.parse(source).body:
            if not isinstance(node, (ast.FunctionDef, ast.ClassDef)) or node.name in outside \
                    or node.name in STAY_WITH_THEIR_SUBJECT:
                continue
            callers = users.get(node.name, set()) - ({path} if source.count(node.name) == 1 else set())
            if callers and all(train_dir in caller.parents for caller in callers):
                misplaced.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno} {node.name} "
                                 f"(used only by {', '.join(sorted(c.name for c in callers))})")
    assert misplaced == []


def test_docstrings_name_their_parameters_one_way():
    """One style across the library: a "Parameters:" block of `name: meaning` lines where one is needed."""
    other = {str(p.relative_to(PACKAGE.parent)): line.strip() for p in PACKAGE.rglob("*.py")
             for line in p.read_text(encoding="utf-8").splitlines()
             if line.strip() in ("Args:", "Arguments:", "Parameters", "Returns", "----------") or ":param " in line}
    assert other == {}
