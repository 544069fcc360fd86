"""Write the student versions of the notebooks: solutions out, outputs cleared (`make student`).

    python tools/make_student.py [--out build/student]

Honours nbgrader's markers: in a code cell, the lines between `### BEGIN SOLUTION` and
`### END SOLUTION` become `# YOUR CODE HERE` and `raise NotImplementedError()` at the same
indentation, exactly what nbgrader's ClearSolutions writes; the cells' nbgrader metadata is kept, so
a teacher can also hand the notebooks out with nbgrader itself. Every check cell then says "not
implemented yet" in one line, and the notebook still runs to the end on the library's code.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"


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


def student_version(nb: dict, name: str) -> dict:
    for i, cell in enumerate(nb["cells"]):
        if cell["cell_type"] == "code":
            cell["source"] = strip_solutions("".join(cell["source"]), f"{name} cell {i}").splitlines(keepends=True)
            cell["outputs"], cell["execution_count"] = [], None
    return nb


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "student")
    args = parser.parse_args(argv)
    if args.out.resolve() == (ROOT / "notebooks").resolve():
        raise SystemExit(f"{args.out}: that is where the solutions live; write the student versions elsewhere")
    args.out.mkdir(parents=True, exist_ok=True)
    exercises = 0
    for path in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        text = path.read_text()
        exercises += text.count(BEGIN)
        nb = student_version(json.loads(text), path.name)
        fd, tmp = tempfile.mkstemp(dir=args.out, prefix=f".{path.name}.", suffix=".tmp")  # whole files only
        with os.fdopen(fd, "w") as f:
            f.write(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
        os.replace(tmp, args.out / path.name)
    print(f"{args.out}: student notebooks, {exercises} solutions replaced by `raise NotImplementedError()`")
    return 0


if __name__ == "__main__":
    sys.exit(main())
