"""Data: the paired A|B format, official archives, Carvana-style preparation, OpenMoji.

Files -> folders of A|B pairs -> `PairedImageDataset` -> tensors. Nothing here knows about networks.

The names below are imported on first use (PEP 562), like the package's front door: a verb that
only downloads loads no torchvision, and one that trains needs no SVG renderer.
"""

import importlib
import pkgutil

_NAMES = {  # name -> the module (relative to this package) that defines it
    ".paired": ["PairedImageDataset", "load_rgb", "make_pair_image", "split_pair_array"],
    "..files": ["default_data_dir"],
    ".download": ["download_dataset", "download_carvana", "safe_extract", "DEFAULT_URL", "OFFICIAL_DATASETS"],
    ".edges": ["canny_edges", "sketch_edges", "edges_for"],
    ".masked_photos": ["prepare_masked_photos", "masked_photo_to_pair", "find_image_mask_pairs", "load_mask",
                       "remove_background", "pad_to_square", "resize_square", "object_id"],
    ".openmoji": ["build_openmoji_dataset", "ensure_openmoji_dataset", "openmoji_attribution",
                  "parse_openmoji_svg", "render_openmoji", "render_svg", "read_manifest"],
    ".openmoji_split": ["openmoji_group_key", "split_by_group"],
}
_MODULE_OF = {name: module for module, names in _NAMES.items() for name in names}
__all__ = list(_MODULE_OF)


def __getattr__(name: str):
    """`data.<name>` above, or `data.<module>` (data.loaders, ...): imported on first use."""
    if name in _MODULE_OF:
        value = getattr(importlib.import_module(_MODULE_OF[name], __name__), name)
    elif name in _submodules():
        value = importlib.import_module(f".{name}", __name__)
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__, *_submodules()})


def _submodules() -> set[str]:
    return {info.name for info in pkgutil.iter_modules(__path__) if not info.name.startswith("_")}
