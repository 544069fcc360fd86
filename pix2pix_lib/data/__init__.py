"""Data: the paired A|B format, official archives, Carvana-style preparation, OpenMoji.

Files -> folders of A|B pairs -> `PairedImageDataset` -> tensors. Nothing here knows about networks.
"""

from .download import DEFAULT_URL, OFFICIAL_DATASETS, download_carvana, download_dataset, safe_extract
from .edges import canny_edges, edges_for, sketch_edges
from .masked_photos import (
    find_image_mask_pairs,
    load_mask,
    masked_photo_to_pair,
    object_id,
    pad_to_square,
    prepare_masked_photos,
    remove_background,
    resize_square,
)
from .openmoji import (
    build_openmoji_dataset,
    ensure_openmoji_dataset,
    openmoji_attribution,
    parse_openmoji_svg,
    read_manifest,
    render_openmoji,
    render_svg,
)
from .openmoji_split import openmoji_group_key, split_by_group
from .paired import PairedImageDataset, load_rgb, make_pair_image, split_pair_array
from ..files import default_data_dir

__all__ = [
    "PairedImageDataset", "load_rgb", "make_pair_image", "split_pair_array",
    "default_data_dir",
    "download_dataset", "download_carvana", "safe_extract", "DEFAULT_URL", "OFFICIAL_DATASETS",
    "canny_edges", "sketch_edges", "edges_for",
    "prepare_masked_photos", "masked_photo_to_pair", "find_image_mask_pairs", "load_mask",
    "remove_background", "pad_to_square", "resize_square", "object_id",
    "build_openmoji_dataset", "ensure_openmoji_dataset", "openmoji_attribution",
    "openmoji_group_key", "parse_openmoji_svg", "render_openmoji", "render_svg",
    "split_by_group", "read_manifest",
]
