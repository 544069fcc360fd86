"""Training pix2pix, in one folder: how a run steps, loops, saves and resumes.

    step.py         TrainingState and its training_step (the paper's D step then G step)
    loop.py         fit: the epochs, validation, reports, the time budget; train_one_epoch
    checkpoint.py   the checkpoint format, and the resume rule (what a resumed run may change)
    run_folder.py   the checks before the first step, and each epoch's files
    batches.py      the seeded batch streams (training, precise BN, the sample grid's pairs)
    distributed.py  torchrun: joining it, averaging gradients, agreeing on statistics

Adding an EMA of G: a field on TrainingState (step.py), updated in training_step, saved in
training_state_dict / load_training_state (checkpoint.py), and handed to save_epoch (loop.py).
"""

from .checkpoint import (CHECKPOINT_FORMAT, RESUME_MAY_CHANGE, load_checkpoint, load_training_state, read_checkpoint,
                         restore_checkpoint, resume_changes, save_checkpoint, training_state_dict)
from .loop import EpochReport, ProgressReport, calibrate_batch_norm, fit, train_one_epoch
from .run_folder import check_data, check_run_folder
from .step import TrainingDiverged, TrainingState, linear_decay
from ..runs import BEST_GENERATOR, CHECKPOINT, LAST_GENERATOR

__all__ = ["TrainingState", "TrainingDiverged", "linear_decay", "fit", "train_one_epoch", "calibrate_batch_norm",
           "EpochReport", "ProgressReport", "load_checkpoint", "restore_checkpoint", "read_checkpoint",
           "save_checkpoint", "training_state_dict", "load_training_state", "resume_changes", "RESUME_MAY_CHANGE",
           "CHECKPOINT_FORMAT", "check_data", "check_run_folder", "CHECKPOINT", "BEST_GENERATOR", "LAST_GENERATOR"]
