import numpy as np
import pytest

from pix2pix_lib.data.edge_pairs import derive_edge_pairs
from pix2pix_lib.data.edges import edges_for
from pix2pix_lib.data.paired import list_pair_files, load_rgb, split_pair_array


@pytest.mark.parametrize("style", ["canny", "sketch"])
def test_edges_dataset_keeps_targets_and_split_and_replaces_sketches(tiny_pairs, tmp_path, style):
    out = derive_edge_pairs(tiny_pairs, tmp_path / "edges", style=style, progress=False)
    for split in ("train", "val"):
        src, dst = list_pair_files(tiny_pairs / split), list_pair_files(out / split)
        assert [p.name for p in src] == [p.name for p in dst]
        for s, d in zip(src, dst):
            _, b_src = split_pair_array(load_rgb(s))
            a_dst, b_dst = split_pair_array(load_rgb(d))
            assert np.array_equal(b_src, b_dst)  # the target is untouched
            assert np.array_equal(a_dst, edges_for(b_src, style, rgb=True))  # the sketch: edges of B
            assert a_dst.max() == 255  # white paper
            if style == "canny":  # (the sketch style drops strokes this short at 32 px)
                assert a_dst.min() == 0  # black strokes
    assert not list(tmp_path.glob(".edges*"))  # no temporary folder left behind


def test_edges_dataset_carries_the_sources_attribution_and_licence(tiny_pairs, tmp_path):
    (tiny_pairs / "ATTRIBUTION.txt").write_text("Pictures by Someone. License: CC BY-SA 4.0\n")
    (tiny_pairs / "LICENSE.txt").write_text("the licence text\n")
    out = derive_edge_pairs(tiny_pairs, tmp_path / "edges", progress=False)
    attribution = (out / "ATTRIBUTION.txt").read_text().splitlines()
    assert attribution[0] == "Pictures by Someone. License: CC BY-SA 4.0"
    assert "replaced by canny edges of its target (B)" in attribution[-1]
    assert (out / "LICENSE.txt").read_text() == "the licence text\n"


def test_unknown_edge_style_is_named():
    with pytest.raises(ValueError, match="unknown edge style 'pencil'"):
        edges_for(np.zeros((8, 8, 3), np.uint8), "pencil")
