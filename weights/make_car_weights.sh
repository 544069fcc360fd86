#!/usr/bin/env bash
# How weights/cars_doodle_128.pt is made (issue #23): the original project's Carvana experiment with
# the project's own CLI, on the 1,440 photos of ../shared/data/carvana-90 (90 cars x 16 views, no
# masks), on a 2-core CPU. With Kaggle credentials, `python -m pix2pix_lib download carvana` gives
# the full set (SRC=<root>/carvana/train; it has masks: add them with MASKS=<root>/carvana/train_masks).
# Trains two generators with identical settings that differ only in their sketches:
#   doodle - each photo twice: with its Canny edges and with sketch-style edges of the photo (fewer,
#            thicker, connected strokes - how people draw), plus the doodle augmentations
#   plain  - the Canny edges alone: the original project's recipe, whose car model coloured
#            people's doodles badly
# Split: 5 whole cars (all 16 views) held out for validation, seed 0, as the original project did.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
SRC=${SRC:-../shared/data/carvana-90/images}
MASKS=${MASKS:-}                 # empty: the masks are made from the photos (data/masks.py)
EPOCHS=${EPOCHS:-3}              # at the initial learning rate, then as many decaying to 0 (the shipped file: 3)
RUNS=${RUNS:-runs}
MASK_ARGS=()
[ -n "$MASKS" ] && MASK_ARGS=(--masks "$MASKS")

# 1. Pairs at 256 px: mask -> car on white -> padded square -> 256 -> edges. Same masks, same split.
$PY -m pix2pix_lib prepare --images "$SRC" "${MASK_ARGS[@]}" --out data/carvana90-canny --size 256 --edge-style canny --val-cars 5 --seed 0
$PY -m pix2pix_lib prepare --images "$SRC" "${MASK_ARGS[@]}" --out data/carvana90-sketch --size 256 --edge-style sketch --val-cars 5 --seed 0

# 2. The two training folders: plain = the Canny pairs; doodle = those + the sketch-style train pairs.
#    Validation is the Canny val pairs in both, so their numbers compare.
$PY - <<'PY'
import shutil
from pathlib import Path
from pix2pix_lib.files import atomic_output_dir

canny, sketch = Path("data/carvana90-canny"), Path("data/carvana90-sketch")
terms = ("Carvana Image Masking Challenge photos (Kaggle): non-commercial research and education under the "
         "competition's rules; never share the images. Changes: background removed with masks made from the "
         "photos (pix2pix_lib.data.masks), padded square, 256 px, edges drawn from the photo{}.\n")
for out, extra in (("data/carvana90-plain", None), ("data/carvana90-doodle", sketch)):
    with atomic_output_dir(out, kind="carvana pairs", inputs=(canny, sketch)) as tmp:
        for split in ("train", "val"):
            (tmp / split).mkdir()
            for f in sorted((canny / split).glob("*.png")):
                shutil.copyfile(f, tmp / split / f.name)
        if extra is not None:
            for f in sorted((extra / "train").glob("*.png")):
                shutil.copyfile(f, tmp / "train" / f"sketch_{f.name}")
        # ATTRIBUTION.txt: training copies it into every generator file it writes (extra.data_licence).
        (tmp / "ATTRIBUTION.txt").write_text(terms.format(
            " (Canny) and, for each training photo, also sketch-style edges" if extra else " (Canny)"))
PY

# 3. The two runs, one after the other (each alone on the CPU is faster than both at once).
COMMON=(--preset quick --epochs "$EPOCHS" --epochs-decay "$EPOCHS" --quiet)
mkdir -p "$RUNS"
$PY -m pix2pix_lib train "${COMMON[@]}" --augment doodle --data data/carvana90-doodle \
    --out "$RUNS/cars-doodle" > "$RUNS/cars-doodle.log" 2>&1
$PY -m pix2pix_lib train "${COMMON[@]}" --data data/carvana90-plain --out "$RUNS/cars-plain" > "$RUNS/cars-plain.log" 2>&1

$PY -m pix2pix_lib export "$RUNS/cars-doodle/best_generator.pt" -o weights/cars_doodle_128.pt --half \
    --note "Trained on Carvana Image Masking Challenge photos (Kaggle): non-commercial research and education only."

# 4. The numbers and the figure of the model card.
$PY -m pix2pix_lib evaluate --weights weights/cars_doodle_128.pt --data data/carvana90-plain --no-perceptual
$PY -m pix2pix_lib evaluate --weights "$RUNS/cars-plain/best_generator.pt" --data data/carvana90-plain --no-perceptual
$PY benchmarks/doodle_robustness.py --model "doodle-robust (shipped)=weights/cars_doodle_128.pt" \
    --model "Canny edges only=$RUNS/cars-plain/best_generator.pt" --data data/carvana90-plain \
    --sets-dir "$RUNS/robustness-cars" --max-images 80 --no-width-normalization --paper-mode-images 0 \
    --json results/car_robustness.json --figure results/car_doodles.png --doodles pix2pix_lib/assets/doodles/cars \
    --credit "Car generators trained on Carvana photos (Kaggle competition data: non-commercial research and education)."
