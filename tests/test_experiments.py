"""The ablation study: planning (dedup, budget), running with a cache, reading results back."""

import json
import shutil
from pathlib import Path

import pytest

import pix2pix_lib.train
from pix2pix_lib.cli import main
from pix2pix_lib.experiments import BUDGET_IMAGES, GROUPS, VARIANTS, Variant, base_config, budget_schedule, config_key, plan_runs, run_experiments
from pix2pix_lib.report import checks_markdown, load_results, paper_checks, results_markdown

ROOT = Path(__file__).resolve().parents[1]


def test_identical_configs_run_once():
    runs = plan_runs(VARIANTS, base_config())
    assert len(VARIANTS) == 9 and len(runs) == 7
    shared = [r for r in runs if len(r["variants"]) > 1]
    assert len(shared) == 1 and shared[0]["variants"] == ["L1 + cGAN", "U-Net", "70x70"]
    assert shared[0]["key"] == config_key(base_config())
    # Machinery (device, loader workers) does not make a different run.
    assert config_key(base_config(device="cuda", num_workers=4)) == config_key(base_config())
    assert config_key(base_config(patch_size=16)) != config_key(base_config())


def test_every_group_is_covered_and_overrides_are_valid():
    assert {v.group for v in VARIANTS} == set(GROUPS)
    for v in VARIANTS:
        base_config().replace(**v.overrides)  # unknown fields would raise
    with pytest.raises(ValueError, match="unknown group"):
        plan_runs([Variant("x", "optimiser")], base_config())


def test_budget_becomes_whole_epochs_of_equal_length():
    config = budget_schedule(base_config(batch_size=8), n_train=100, budget_images=300)
    # 38 steps needed, 12 per pass -> 4 epochs of 10 steps = 320 images >= 300
    assert (config.total_epochs, config.max_steps_per_epoch) == (4, 10)
    assert (config.epochs, config.epochs_decay) == (3, 1)
    one = budget_schedule(base_config(batch_size=4), n_train=100, budget_images=8)
    assert (one.epochs, one.epochs_decay, one.max_steps_per_epoch) == (1, 0, 2)
    # The default budget on OpenMoji (4,020 training pairs): 4 epochs of 469 steps of 8.
    full = budget_schedule(base_config(), n_train=4020, budget_images=BUDGET_IMAGES)
    assert (full.total_epochs, full.max_steps_per_epoch) == (4, 469)


@pytest.fixture
def counted_fit(monkeypatch):
    calls = []
    real_fit = pix2pix_lib.train.fit

    def fit(config, *args, **kwargs):
        calls.append(config)
        return real_fit(config, *args, **kwargs)

    monkeypatch.setattr(pix2pix_lib.train, "fit", fit)
    return calls


def test_run_experiments_writes_results_and_caches_runs(tiny_pairs, tmp_path, counted_fit, monkeypatch):
    monkeypatch.setenv("PIX2PIX_FID_WEIGHTS", str(tmp_path / "none.pth"))
    monkeypatch.setenv("PIX2PIX_LPIPS_WEIGHTS", str(tmp_path / "none.pth"))
    base = base_config(image_size=32, ngf=8, ndf=8, batch_size=4, precision="fp32", device="cpu")
    variants = [v for v in VARIANTS if v.name in ("L1 only", "L1 + cGAN", "U-Net", "16x16")]
    out, results_path = tmp_path / "runs", tmp_path / "results" / "ablations.json"
    kwargs = dict(base=base, budget_images=8, variants=variants, progress=False, results_path=results_path)

    results = run_experiments(tiny_pairs, out, **kwargs)
    assert len(counted_fit) == 3  # "U-Net" is the same run as "L1 + cGAN"
    assert json.loads(results_path.read_text()) == results == load_results(results_path)
    assert results_path.with_suffix(".png").is_file()
    assert results["budget_images"] == 8 and results["distinct_runs"] == 3
    assert {"date", "hardware", "torch", "seed", "base_config", "baseline", "data", "schedule"} <= set(results)
    assert results["hardware"]["device"] == "cpu" and results["hardware"]["cpu"]
    rows = {r["variant"]: r for r in results["variants"]}
    assert list(rows) == ["L1 only", "L1 + cGAN", "U-Net", "16x16"]
    assert rows["U-Net"]["run"] == rows["L1 + cGAN"]["run"] and rows["U-Net"]["shared_with"] == ["L1 + cGAN"]
    for row in rows.values():
        assert {"group", "overrides", "metrics", "images_seen", "wall_seconds", "samples"} <= set(row)
        assert row["images_seen"] == 8 and row["steps"] == 2
        assert {"l1", "l1_changed", "psnr", "ssim", "sharpness"} <= set(row["metrics"])
        assert all(isinstance(value, float) for value in row["metrics"].values())  # numbers only
        assert "fid" not in row["metrics"] and row["skipped"]["fid"].startswith("skipped: weights not found at")
        assert (out / row["samples"]).is_file()
    assert rows["L1 only"]["overrides"] == {"use_gan": False}

    # Second call: everything comes from the cache, nothing retrains.
    mtime = (out / "l1-only" / "generator.pt").stat().st_mtime_ns
    again = run_experiments(tiny_pairs, out, **kwargs)
    assert len(counted_fit) == 3 and (out / "l1-only" / "generator.pt").stat().st_mtime_ns == mtime
    assert [r["metrics"] for r in again["variants"]] == [r["metrics"] for r in results["variants"]]

    # Other data in the same output folder makes the runs stale; so does recompute, even when nothing changed.
    other = tmp_path / "other-pairs"
    shutil.copytree(tiny_pairs, other)
    next((other / "train").iterdir()).unlink()
    run_experiments(other, out, **kwargs | {"variants": variants[:1]})
    assert len(counted_fit) == 4
    run_experiments(other, out, **kwargs | {"variants": variants[:1], "recompute": True})
    assert len(counted_fit) == 5


def test_paper_checks_read_the_numbers():
    def row(name, skipped=None, **metrics):
        return {"variant": name, "group": "loss", "metrics": metrics, "skipped": skipped or {}}

    results = {"variants": [row("L1 only", sharpness=0.7, l1_changed=0.20), row("cGAN only", sharpness=1.1, l1_changed=0.30),
                            row("L1 + cGAN", {"fid": "skipped: weights not found at /x"}, sharpness=0.95,
                                l1_changed=0.201)],
               "baseline": {}}
    checks = {(c["claim"], c["metric"]): c for c in paper_checks(results)}
    assert checks[("L1 alone gives blurry results", "sharpness")]["agrees"] is True
    assert checks[("without L1 the output drifts from the target (artefacts)", "l1_changed")]["agrees"] is True
    fid = checks[("L1 + cGAN is the most realistic (FID)", "fid")]
    assert fid["agrees"] is None and "weights not found" in fid["ours"]
    assert checks[("U-Net beats the encoder-decoder", "ssim")]["ours"].startswith("not measured")
    results["variants"][0]["metrics"]["sharpness"] = 1.2  # sharper than the target is no better (closer to 1 is)
    assert paper_checks(results)[0]["agrees"] is True
    results["variants"][0]["metrics"]["sharpness"] = 0.99  # now L1 alone is the closest to the target's
    assert paper_checks(results)[0]["agrees"] is False
    results["variants"][0]["metrics"]["sharpness"] = 0.951  # within 1%: a tie
    assert paper_checks(results)[0]["agrees"] is None and "≈ tie" in checks_markdown(paper_checks(results))


def test_committed_results_file_is_complete():
    results = load_results(ROOT / "results" / "ablations.json")
    assert [v["variant"] for v in results["variants"]] == [v.name for v in VARIANTS]
    assert results["hardware"]["summary"] and results["budget_images"] > 0
    for v in results["variants"]:
        assert all(isinstance(v["metrics"][m], float) for m in ("l1", "l1_changed", "psnr", "ssim", "sharpness", "colourfulness"))
        # Written when skipped metrics were strings among the numbers: read back, the two are apart.
        assert all(isinstance(x, float) for x in v["metrics"].values()) and set(v["skipped"]) <= {"fid", "lpips"}
        assert v["images_seen"] >= results["budget_images"]
    table = results_markdown(results)
    assert all(title in table for title in GROUPS.values())
    assert (ROOT / "results" / "ablations.png").stat().st_size < 400_000


def test_load_results_rejects_other_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="no readable results file"):
        load_results(tmp_path / "missing.json")
    (tmp_path / "other.json").write_text('{"format": "something-else"}')
    with pytest.raises(ValueError, match="not an ablation results file"):
        load_results(tmp_path / "other.json")


def test_experiments_cli_rejects_unknown_variants_and_missing_data(tiny_pairs, tmp_path, capsys):
    assert main(["experiments", "--data", str(tiny_pairs), "--out", str(tmp_path / "o"),
                 "--results", str(tmp_path / "r.json"), "--variants", "L1 only,best GAN"]) == 2
    assert "unknown variants ['best GAN']" in capsys.readouterr().err
    assert main(["experiments", "--data", str(tmp_path / "nothing"), "--out", str(tmp_path / "o"),
                 "--results", str(tmp_path / "r.json")]) == 2
    assert "nothing/train: no such folder" in capsys.readouterr().err
