"""The paper's ablations in miniature (notebook 06): which design choices matter, measured.

Isola et al. (2017) justify pix2pix with three ablations, repeated here at quick scale on the
OpenMoji line-art -> colour default:

    group       variants                                   paper
    loss        L1 only | cGAN only | L1 + cGAN            Fig. 4, Table 1
    generator   encoder-decoder (no skips) | U-Net         Fig. 5 (both with L1 + cGAN)
    patch       D sees 1x1 | 16x16 | 70x70 | 286x286       Fig. 6, Table 3

Each variant is a handful of `TrainConfig` overrides of one base config, so every run shares the
seed, the data and the budget (the number of training images seen). "L1 + cGAN", "U-Net" and
"70x70" are the same configuration (the base): it runs once and serves all three groups.

Each run is cached in `<out_dir>/<run>/result.json`: re-running skips finished runs (unless
`recompute`) and resumes an interrupted one from its checkpoint.
"""

from .study import (RESULTS_FORMAT, RUN_RESULT, RUN_WRITES, SAMPLES, RunIdentity, StudyData, ablation_grid,
                    check_study_folders, grid_rows, run_experiments)
from .variants import (BUDGET_IMAGES, GROUPS, LAB_GROUPS, N_SAMPLES, VARIANTS, Variant, base_config, budget_schedule,
                       config_key, plan_runs, select_variants, slugify)

__all__ = ["run_experiments", "Variant", "VARIANTS", "GROUPS", "LAB_GROUPS", "select_variants", "base_config",
           "config_key", "slugify", "plan_runs", "budget_schedule", "BUDGET_IMAGES", "N_SAMPLES", "RESULTS_FORMAT",
           "RUN_RESULT", "RUN_WRITES", "SAMPLES", "RunIdentity", "StudyData", "check_study_folders", "grid_rows",
           "ablation_grid"]
