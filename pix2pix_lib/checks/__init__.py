"""Checks for the notebooks' exercises: they run your code and say precisely what is wrong.

networks.py holds the checks of notebook 02 (blocks, U-Net, receptive field), training.py those
of notebook 03 (the losses, one training step); core.py, what they share.

Each `check_*` takes what the exercise asked you to write, runs it against the library's own
implementation (the reference answer) on fixed-seed inputs, prints one line, and returns a
`Check`: true when everything matched. A failure names what differs (which layer's output shape,
the parameter count off by how much, a skip connection missing, D's step sending gradient into G,
a loss value off the reference), with the likely cause. Code that still raises
`NotImplementedError` (the student version of a notebook, `make student`) gets "not implemented
yet", never a traceback; so does an exercise built on one that is not done yet.

    ok = checks.check_down_block(down_block)      # ✓ down_block: ... / ✗ down_block: ...
    Block = down_block if ok else DownBlock        # the notebook goes on with yours when it passes
    checks.graded(ok)                              # last line of a check cell: see below

Grading. A check never raises: a student stepping through sees its one line and the notebook goes
on. Each check cell ends with `checks.graded(...)`, which raises an AssertionError carrying the ✗
lines when the notebook is graded: under nbgrader (autograde and validate set NBGRADER_EXECUTION)
or with PIX2PIX_GRADING=1 (PIX2PIX_GRADING=0 turns it off). nbgrader then gives the cell's points
only when all of its checks passed; the cell's other lines ran first, so the next exercise still
goes on with the library's code and is graded on its own.
"""

from .core import Check, graded, grading, mine_or_library
from .networks import (check_down_block, check_receptive_field, check_unet, check_up_block, conv_layers,
                       library_down_block, library_up_block)
from .training import (check_discriminator_loss, check_gan_loss, check_generator_loss, check_training_step,
                       library_discriminator_loss, library_gan_loss, library_generator_loss, library_training_step)

__all__ = ["Check", "graded", "grading", "mine_or_library", "check_down_block", "check_up_block", "check_unet", "check_receptive_field",
           "conv_layers", "library_down_block", "library_up_block", "check_gan_loss", "check_discriminator_loss",
           "check_generator_loss", "check_training_step", "library_gan_loss", "library_discriminator_loss",
           "library_generator_loss", "library_training_step"]
