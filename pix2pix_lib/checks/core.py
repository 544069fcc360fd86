"""What the checks share: the result, the one-line report, seeded inputs, weight copying."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

PAPER_G_PARAMETERS = 54_413_955  # the 256 px U-Net with ngf 64 (the reference's count too)
NOT_YET = "not implemented yet (replace the `raise NotImplementedError()` in the cell above)"


@dataclass
class Check:
    """The outcome of one check: true when it passed; `problem` says what is wrong."""

    name: str
    problem: str | None = None

    def __bool__(self) -> bool:
        return self.problem is None

    def __str__(self) -> str:
        return f"✓ {self.name}: correct" if self else f"✗ {self.name}: {self.problem}"


def _check(name: str, run: Callable[[], str | None]) -> Check:
    """Run one check; the student's exceptions become the problem line (no traceback wall)."""
    try:
        problem = run()
    except NotImplementedError:
        problem = NOT_YET
    except Exception as err:  # noqa: BLE001 - whatever the student's code raised, in one line
        problem = f"your code raised {type(err).__name__}: {' '.join(str(err).split())[:300]}"
    result = Check(name, problem)
    print(result)
    return result


def grading() -> bool:
    """True while nbgrader grades or validates (it sets NBGRADER_EXECUTION), or with PIX2PIX_GRADING=1.

    PIX2PIX_GRADING=0 turns it off even under nbgrader. A student stepping through a notebook is
    never graded: a ✗ prints one line and the notebook goes on.
    """
    forced = os.environ.get("PIX2PIX_GRADING", "").strip()
    if forced:
        return forced not in ("0", "false", "no")
    return bool(os.environ.get("NBGRADER_EXECUTION"))


def graded(*results: Check) -> None:
    """The last line of each check cell: when grading (`grading()`), a ✗ above fails the cell.

    Raises AssertionError carrying the checks' own one-line messages, so nbgrader gives the cell's
    points only when every check in it passed (and `nbgrader validate` names what is wrong).
    Otherwise it does nothing: the ✗ lines were printed already and the notebook goes on.
    """
    failed = [str(result) for result in results if not result]
    if failed and grading():
        raise AssertionError("; ".join(failed))


def mine_or_library(name: str, mine, ok: Check, library):
    """Your implementation when its check passed, else the library's (the notebook goes on either way)."""
    print(f"  -> going on with your {name}" if ok else f"  -> going on with the library's {name} (fix yours, then re-run)")
    return mine if ok else library


def _value(x) -> float:
    """A loss as a number, without autograd's warning about converting a tensor that requires grad."""
    return float(x.detach()) if isinstance(x, torch.Tensor) else float(x)


def _seeded(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def _copy_weights(source: nn.Module, target: nn.Module) -> bool:
    """Copy `source`'s weights into `target` by position when their shapes line up (True if copied)."""
    src, dst = list(source.state_dict().values()), target.state_dict()
    if len(src) != len(dst) or any(a.shape != b.shape for a, b in zip(src, dst.values())):
        return False
    target.load_state_dict(dict(zip(dst, src)))
    return True


def _parameter_problem(what: str, got: int, want: int, hints: dict[int, str]) -> str | None:
    if got == want:
        return None
    diff = got - want
    return f"{what} has {got:,} parameters, the paper's has {want:,} (off by {diff:+,}){hints.get(diff, '')}"


def _same_function(mine: nn.Module, reference: nn.Module, x: torch.Tensor) -> bool | None:
    """Same outputs in eval mode once the weights are copied; None when the layers do not line up."""
    if not _copy_weights(mine, reference):
        return None
    mine.eval(), reference.eval()
    with torch.no_grad():
        return torch.allclose(mine(x), reference(x), atol=1e-5)
