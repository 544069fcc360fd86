"""Reading the ablation study back (notebook 06): tables, plots, and the verdict on each paper claim.

`experiments.run_experiments` trains and measures; this module only reads its results file.
"""

from __future__ import annotations

import math

from pathlib import Path

import matplotlib.pyplot as plt
from PIL import Image

from .experiments import GROUPS, RESULTS_FORMAT, grid_rows
from .files import read_json, shown
from .imaging import open_image
from .metrics import BETTER, badness, is_better


def load_results(path: str | Path) -> dict:
    """The combined results file written by `run_experiments` (checked for its format tag).

    Metrics are numbers only; why one is missing is in "skipped" (older files mixed the two: split here).
    """
    path = Path(path)
    data = read_json(path)
    if data is None:
        raise FileNotFoundError(f"{shown(path)}: no readable results file (run `python -m pix2pix_lib experiments`)")
    if data.get("format") != RESULTS_FORMAT:
        raise ValueError(f"{shown(path)}: not an ablation results file (format {repr(data.get('format'))[:60]})")
    for record, metrics, skipped in [(v, "metrics", "skipped") for v in data["variants"]] + [(data, "baseline",
                                                                                             "baseline_skipped")]:
        numbers, why = split_skipped(record[metrics])
        record[metrics], record[skipped] = numbers, {**why, **record.get(skipped, {})}
    return data


def split_skipped(values: dict) -> tuple[dict[str, float], dict[str, str]]:
    """(numbers, {metric: why}) of a metrics record; files from before they were kept apart mixed them."""
    numbers = {k: v for k, v in values.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    return numbers, {k: str(v) for k, v in values.items() if k not in numbers}


def plot_ablation_grid(grid: Image.Image | str | Path, results: dict, *, width: float = 9.0):
    """Show the sample grid with each row labelled by its variant(s). Returns the Figure."""
    grid = open_image(grid) if isinstance(grid, (str, Path)) else grid  # our formats only
    labels = [label for label, _ in grid_rows(results)]
    row = grid.height / len(labels)
    fig, ax = plt.subplots(figsize=(width, width * grid.height / grid.width))
    ax.imshow(grid)
    ax.set_yticks([row * (i + 0.5) for i in range(len(labels))], labels)
    ax.set_xticks([])
    for side in ax.spines.values():
        side.set_visible(False)
    fig.tight_layout()
    return fig


def numeric_metrics(results: dict) -> list[str]:
    """Metric names that hold numbers for every variant (FID / LPIPS only when they were computed)."""
    names = list(results["variants"][0]["metrics"])
    return [m for m in names if all(m in v["metrics"] for v in results["variants"])]


def results_markdown(results: dict) -> str:
    """The results as one Markdown table per group (arrows say which way is better)."""
    metrics = numeric_metrics(results)
    arrow = {m: {"higher": " ↑", "lower": " ↓"}.get(BETTER.get(m), " (1 = target)") for m in metrics}
    lines = []
    for group, title in GROUPS.items():
        rows = [v for v in results["variants"] if v["group"] == group]
        if not rows:
            continue
        lines += [f"**{title}**", "", "| variant | " + " | ".join(m + arrow[m] for m in metrics) + " |",
                  "|---|" + "---:|" * len(metrics)]
        for v in rows:
            lines.append(f"| {v['variant']} | " + " | ".join(f"{v['metrics'][m]:.4f}" for m in metrics) + " |")
        base = results["baseline"]
        lines.append("| *copy the sketch* | " + " | ".join(
            f"*{base[m]:.4f}*" if m in base else "" for m in metrics) + " |")
        lines.append("")
    return "\n".join(lines)


def plot_ablation_metrics(results: dict, metrics=("l1", "l1_changed", "psnr", "ssim", "sharpness", "colourfulness")):
    """Bar charts: one row per group, one column per metric; dashed line = copy-the-sketch baseline."""
    metrics = [m for m in metrics if m in numeric_metrics(results)]
    groups = [g for g in GROUPS if any(v["group"] == g for v in results["variants"])]
    fig, axes = plt.subplots(len(groups), len(metrics), figsize=(2.6 * len(metrics), 2.4 * len(groups)), squeeze=False)
    for r, group in enumerate(groups):
        rows = [v for v in results["variants"] if v["group"] == group]
        for c, metric in enumerate(metrics):
            ax = axes[r][c]
            values = [v["metrics"][metric] for v in rows]
            ax.bar(range(len(rows)), values, color=[f"C{i}" for i in range(len(rows))])
            base = results["baseline"].get(metric)
            if base is not None:
                ax.axhline(base, color="gray", linestyle="--", linewidth=1)
            if metric in ("sharpness", "colourfulness"):
                ax.axhline(1.0, color="black", linewidth=0.8)
            low, high = min(values + [base] if base is not None else values), max(values)
            pad = (high - low) * 0.25 or abs(high) * 0.05 or 0.01
            ax.set_ylim(max(0.0, low - pad) if low >= 0 else low - pad, high + pad)
            ax.set_xticks(range(len(rows)), [v["variant"] for v in rows], rotation=30, ha="right", fontsize=8)
            better = f" ({BETTER[metric]} is better)" if metric in BETTER else ""
            ax.set_title(metric + better, fontsize=9)
            if c == 0:
                ax.set_ylabel(group)
    fig.tight_layout()
    return fig


# What the paper reports, as comparisons our numbers can confirm or contradict. Each check:
# (group, the paper's claim, metric, variant that should be better, variant it should beat).
# "sharpness" and "colourfulness" are judged as everywhere else (metrics.BETTER): closer to the
# target's 1 is better - a blurry (< 1) or a noisy (> 1) output both miss the target.
PAPER_CLAIMS = (
    ("loss", "L1 alone gives blurry results", "sharpness", "L1 + cGAN", "L1 only"),
    ("loss", "cGAN alone is sharp(er than L1 alone)", "sharpness", "cGAN only", "L1 only"),
    ("loss", "L1 alone averages colours into greys; the cGAN restores colour", "colourfulness", "L1 + cGAN", "L1 only"),
    ("loss", "without L1 the output drifts from the target (artefacts)", "l1_changed", "L1 + cGAN", "cGAN only"),
    ("loss", "L1 + cGAN is the most realistic (FID)", "fid", "L1 + cGAN", "L1 only"),
    ("generator", "U-Net beats the encoder-decoder", "l1_changed", "U-Net", "encoder-decoder"),
    ("generator", "U-Net beats the encoder-decoder", "ssim", "U-Net", "encoder-decoder"),
    ("patch", "even a 1x1 PixelGAN adds colour over L1 alone", "colourfulness", "1x1 (PixelGAN)", "L1 only"),
    ("patch", "1x1 adds colour but not sharpness: larger patches are sharper", "sharpness", "70x70", "1x1 (PixelGAN)"),
    ("patch", "70x70 beats 16x16", "l1_changed", "70x70", "16x16"),
    ("patch", "70x70 beats the full-image 286x286", "l1_changed", "70x70", "286x286 (ImageGAN)"),
)


TIE = 0.01  # relative differences under 1% count as a tie: one seed cannot separate them


def paper_checks(results: dict) -> list[dict]:
    """Each of the paper's claims tested on our numbers: which variant is better, and by how much.

    Returns rows {"group", "claim", "metric", "expected", "ours", "agrees" (True / False; None for
    a tie under TIE or a missing number), "relative_difference"}. One seed and a short budget:
    differences of a few percent can be run-to-run noise, so read "agrees" with the difference.
    """
    values = {v["variant"]: v["metrics"] for v in results["variants"]}
    skipped = {v["variant"]: v.get("skipped", {}) for v in results["variants"]}
    rows = []
    for group, claim, metric, better, worse in PAPER_CLAIMS:
        a, b = values.get(better, {}).get(metric), values.get(worse, {}).get(metric)
        row = {"group": group, "claim": claim, "metric": metric, "expected": f"{better} better than {worse}"}
        if a is None or b is None:
            missing = [n for n in (better, worse) if n not in values]
            why = (skipped.get(better, {}).get(metric) or skipped.get(worse, {}).get(metric)
                   or (f"{' and '.join(missing)} not run" if missing else f"no {metric} in these results"))
            rows.append(row | {"ours": f"not measured ({why})", "agrees": None, "relative_difference": None})
            continue
        difference = (a - b) / abs(b) if b else math.inf
        agrees = None if abs(difference) < TIE else is_better(metric, a, b)
        rows.append(row | {"ours": f"{better} {a:.4f} vs {worse} {b:.4f}", "agrees": agrees,
                           "relative_difference": difference})
    return rows


def verdict(check: dict) -> str:
    if check["agrees"] is not None:
        return {True: "✔ agrees", False: "✘ disagrees"}[check["agrees"]]
    return "≈ tie" if check["relative_difference"] is not None else "– not measured"


def checks_markdown(checks: list[dict]) -> str:
    lines = ["| group | paper says | metric | our numbers | difference | verdict |", "|---|---|---|---|---:|---|"]
    for c in checks:
        diff = f"{100 * c['relative_difference']:+.1f}%" if c["relative_difference"] is not None else ""
        lines.append(f"| {c['group']} | {c['claim']} | {c['metric']} | {c['ours']} | {diff} | {verdict(c)} |")
    return "\n".join(lines)


def group_summaries(results: dict) -> list[str]:
    """One computed sentence per group: which variant is best on each metric (or has the most of it)."""
    sentences = []
    metrics = numeric_metrics(results)
    for group, title in GROUPS.items():
        rows = [v for v in results["variants"] if v["group"] == group]
        if len(rows) < 2:
            continue
        parts = []
        for m in metrics:
            best = min(rows, key=lambda v: badness(m, v["metrics"][m]))
            parts.append(f"best {m} is **{best['variant']}** ({best['metrics'][m]:.4f}, {BETTER[m]} is better)")
        sentences.append(f"*{title}*: " + "; ".join(parts) + ".")
    return sentences
