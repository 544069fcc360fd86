"""Write the student versions of the notebooks: solutions out, outputs cleared (`make student`).

    python tools/make_student.py [--out build/student]

Honours nbgrader's markers: in a code cell, the lines between `### BEGIN SOLUTION` and
`### END SOLUTION` become `# YOUR CODE HERE` and `raise NotImplementedError()` at the same
indentation, exactly what nbgrader's ClearSolutions writes; the cells' nbgrader metadata is kept, so
a teacher can also hand the notebooks out with nbgrader itself. Every check cell then says "not
implemented yet" in one line, and the notebook still runs to the end on the library's code.
The model answers to each notebook's conceptual questions (markdown cells tagged `model-answers`,
folded in a <details> block in the teacher's copy) are left out.

The folder is new or one this tool made (never a folder of your own files, never notebooks/). A rebuild
replaces only the notebooks it wrote there: your other files (a RUBRIC.md) move into the new build
unchanged, and a handed-out notebook you edited makes it refuse, naming it, before anything changes.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as a script from a clone

from pix2pix_lib.course import NOTEBOOKS  # noqa: E402
from pix2pix_lib.files import atomic_output_dir, shown  # noqa: E402

BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
ANSWERS_TAG = "model-answers"  # a markdown cell with the model answers to the questions: teachers only


def strip_solutions(source: str, where: str) -> str:
    out, inside = [], False
    for line in source.splitlines(keepends=True):
        if line.strip() == BEGIN:
            if inside:
                raise ValueError(f"{where}: {BEGIN} inside another solution")
            indent = re.match(r"\s*", line).group(0)
            out += [f"{indent}# YOUR CODE HERE\n", f"{indent}raise NotImplementedError()\n"]
            inside = True
        elif line.strip() == END:
            if not inside:
                raise ValueError(f"{where}: {END} without {BEGIN}")
            inside = False
        elif not inside:
            out.append(line)
    if inside:
        raise ValueError(f"{where}: {BEGIN} never closed")
    return "".join(out)


def is_model_answers(cell: dict) -> bool:
    return ANSWERS_TAG in cell.get("metadata", {}).get("tags", [])


def student_version(nb: dict, name: str) -> dict:
    nb["cells"] = [cell for cell in nb["cells"] if not is_model_answers(cell)]
    for i, cell in enumerate(nb["cells"]):
        if cell["cell_type"] == "code":
            cell["source"] = strip_solutions("".join(cell["source"]), f"{name} cell {i}").splitlines(keepends=True)
            cell["outputs"], cell["execution_count"] = [], None
    return nb


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "student")
    args = parser.parse_args(argv)
    try:
        exercises = write_student_notebooks(args.out)
    except (OSError, ValueError) as err:  # a refused --out, a broken marker: one line, no traceback
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"{shown(args.out)}: student notebooks, {exercises} solutions replaced by `raise NotImplementedError()`")
    return 0


def write_student_notebooks(out: Path) -> int:
    """The student versions of every notebook into `out`; returns how many solutions were taken out."""
    exercises = 0
    # A new folder, or one this tool made before: never a folder of a teacher's own files, never the
    # solutions (an input), built aside, then swapped in whole; only the notebooks it listed are
    # replaced, a teacher's other files are carried over (files.atomic_output_dir).
    with atomic_output_dir(out, kind="student notebooks", inputs=[ROOT / "notebooks"], flag="--out") as tmp:
        for path in sorted((ROOT / "notebooks").glob(NOTEBOOKS)):
            text = path.read_text()
            exercises += text.count(BEGIN)
            nb = student_version(json.loads(text), path.name)
            (tmp / path.name).write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
    return exercises


if __name__ == "__main__":
    sys.exit(main())
