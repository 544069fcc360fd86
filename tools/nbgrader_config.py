"""A teacher's nbgrader configuration for the course's exercises (notebooks 02 and 03).

Copy it into your nbgrader course folder (the one holding source/) as nbgrader_config.py:

    cp tools/nbgrader_config.py ~/grading/nbgrader_config.py
    cd ~/grading && nbgrader generate_assignment ps1 && ... && nbgrader autograde ps1

What it sets, and why:
- fast mode (PIX2PIX_FAST=1) while autograding: the checks do not depend on it (they build their own small
  inputs), and notebook 03's demonstration training then takes seconds, not an hour per student;
- a timeout per cell long enough for a CPU machine (the default 30 s stops notebook 03's training cell);
- nbgrader sets NBGRADER_EXECUTION while it autogrades or validates, which turns the checks' grading on
  (pix2pix_lib.checks.graded): a check cell whose check printed ✗ raises, and loses its points;
- runs/ and data/ a student's notebook wrote are not collected with a submission. While grading, each
  notebook keeps its runs in its own folder (autograded/STUDENT/ps1/runs), never in the clone's runs/
  (pix2pix_lib.course.course_root), so one student's training is never resumed for the next;
- generate_assignment leaves out the model answers to each notebook's conceptual questions (the
  markdown cells tagged `model-answers`), as `make student` does.
"""

import os

os.environ.setdefault("PIX2PIX_FAST", "1")  # PIX2PIX_FAST=0 before `nbgrader autograde` for the full sizes

from nbgrader.converters import GenerateAssignment  # noqa: E402
from nbgrader.preprocessors import NbGraderPreprocessor  # noqa: E402


class DropModelAnswers(NbGraderPreprocessor):
    """The release holds the questions, not their model answers (cells tagged model-answers)."""

    def preprocess(self, nb, resources):
        nb.cells = [cell for cell in nb.cells if "model-answers" not in cell.metadata.get("tags", [])]
        return nb, resources


c = get_config()  # noqa: F821 - nbgrader's config loader provides it
c.GenerateAssignment.preprocessors = [DropModelAnswers,
                                      *GenerateAssignment.class_traits()["preprocessors"].default()]

c.Execute.timeout = 900            # seconds per cell (CPU); -1 for none
c.Execute.interrupt_on_timeout = True
c.Execute.raise_on_iopub_timeout = False
c.CourseDirectory.ignore = [".ipynb_checkpoints", "*.pyc", "__pycache__", "feedback", "runs", "data"]
