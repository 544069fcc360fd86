"""Do these weights make a working network? Asked before a file's tensors are put into one.

A weights file can be well formed and still hold numbers no training produces: 1e38 everywhere,
a batch-norm variance of -1, int8 tensors where floats belong. Loaded as they are, the generator
paints NaN (black) or one flat colour without a word. `value_problems` looks at the numbers,
`output_problem` runs a generator once on a small drawing. Both return what is wrong, in words;
weights.check_state_fits names the file.
"""

from __future__ import annotations

import contextlib
import math
import sys

import torch
from torch import nn

# Trained pix2pix weights stay far below this (the shipped generators: |w| <= 17, batch-norm
# variances included). Larger numbers are no trained network, and overflow float32 in a few layers.
MAX_MAGNITUDE = 1e6


def value_problems(module: nn.Module, state: dict) -> list[str]:
    """What is wrong with the numbers of `state` (which has `module`'s keys and shapes); [] when nothing."""
    own, problems = module.state_dict(), []
    for key, value in state.items():
        floating = own[key].is_floating_point()
        if value.is_floating_point() != floating or value.dtype == torch.bool or value.is_complex():
            problems.append(f"{key} is {str(value.dtype).removeprefix('torch.')}, expected "
                            f"{'a floating-point' if floating else 'an integer'} tensor")
        elif floating and value.numel():
            # One pass for both ends; NaN comes through. (aminmax has no float8 kernel: those go via float32.)
            low, high = map(float, torch.aminmax(value if value.element_size() > 1 else value.float()))
            if not (math.isfinite(low) and math.isfinite(high)):
                problems.append(f"{key} holds NaN or infinite values")
            elif max(-low, high) > MAX_MAGNITUDE:
                problems.append(f"{key} holds values up to {max(-low, high):.3g} (trained weights stay "
                                f"below {MAX_MAGNITUDE:.0e})")
            elif key.endswith("running_var") and low < 0:
                problems.append(f"{key} is a variance, and negative ({low:.3g})")
    return problems


def claimed_bytes_problem(state: dict) -> str | None:
    """A problem when tensors overlap in the file (stride-0 views, keys sharing a storage): memory it does not hold."""
    claimed = sum(v.numel() * v.element_size() for v in state.values())
    held = sum({v.untyped_storage().data_ptr(): v.untyped_storage().nbytes() for v in state.values()}.values())
    if claimed > held:
        return f"its tensors overlap: they claim {claimed / 2**20:.1f} MB from {held / 2**20:.1f} MB of data"
    return None


@torch.no_grad()
def output_problem(generator: nn.Module, state: dict) -> str | None:
    """None when a U-Net with `state` turns a small drawing into a finite picture that is not one flat colour.

    Run in eval mode on the CPU through `state` itself (torch.func.functional_call), so `generator`
    (on any device, maybe on "meta") is neither changed nor copied. Costs one forward pass at its
    size: ~35 ms for the shipped 128 px generator.
    """
    size = 2 ** generator.depth
    x = torch.ones(1, generator.in_channels, size, size)  # white paper in [-1, 1] ...
    x[..., size // 4: 3 * size // 4, size // 4: 3 * size // 4] = -1  # ... with a dark square
    x[..., size // 4 + 2: 3 * size // 4 - 2, size // 4 + 2: 3 * size // 4 - 2] = 1  # outlined only
    floats = {k: v.float() if v.is_floating_point() else v for k, v in state.items()}
    was_training = generator.training
    generator.eval()
    # A compiled generator (TrainConfig.compile) runs eagerly here: one pass is not worth a compile.
    # Only a loaded torch._dynamo can have compiled it (importing it costs over a second).
    stance = getattr(torch.compiler, "set_stance", None) if "torch._dynamo" in sys.modules else None
    eager = stance("force_eager") if stance else contextlib.nullcontext()
    try:
        with eager:
            y = torch.func.functional_call(generator, floats, (x,))
    finally:
        generator.train(was_training)
    if not bool(torch.isfinite(y).all()):
        return "they turn a drawing into NaN or infinite pixels"
    if float(y.amax() - y.amin()) < 1e-3:
        return f"they turn a drawing into one flat colour ({float(y.mean()):.2f} everywhere)"
    return None
