import numpy as np

from pix2pix_lib.data.edge_pairs import derive_edge_pairs
from pix2pix_lib.data.paired import list_pair_files, load_rgb, split_pair_array


def test_edges_dataset_keeps_targets_and_split_and_replaces_sketches(tiny_pairs, tmp_path):
    out = derive_edge_pairs(tiny_pairs, tmp_path / "edges", style="canny", progress=False)
    for split in ("train", "val"):
        src, dst = list_pair_files(tiny_pairs / split), list_pair_files(out / split)
        assert [p.name for p in src] == [p.name for p in dst]
        a_src, b_src = split_pair_array(load_rgb(src[0]))
        a_dst, b_dst = split_pair_array(load_rgb(dst[0]))
        assert np.array_equal(b_src, b_dst)  # the target is untouched
        assert not np.array_equal(a_src, a_dst)  # the sketch is new: edges of B
        assert a_dst.min() == 0 and a_dst.max() == 255  # black strokes on white
    assert not list(tmp_path.glob(".edges*"))  # no temporary folder left behind
