"""The official pix2pix datasets, downloaded by name from the authors' server.

    python -m pix2pix_lib download facades --root data

fetches http://efrosgans.eecs.berkeley.edu/pix2pix/datasets/facades.tar.gz (the address the
paper's `datasets/download_pix2pix_dataset.sh` uses) and unpacks it to `data/facades/{train,val}`.

What makes it safe to run again and again:
- the archive is downloaded through fetch.py: to `<name>.tar.gz.part`, resumed (HTTP Range) only
  when its marker proves this library wrote it, stopped past 1.5x the archive's published size;
- only what the marker proves ours is ever deleted (a corrupt download; the archive once
  unpacked). An archive someone else put there is unpacked and kept if it is a whole dataset,
  else refused and left as it is;
- extraction refuses members that would land outside the target (absolute paths, `..`, links,
  devices) - tarfile's own "data" filter plus our check with a clear message - archives that
  unpack to far more than their size or hold too many members, and archives with no train/ pairs;
- extraction goes to a temporary folder renamed into place at the end: a failure leaves no
  half-extracted dataset behind.
"""

from __future__ import annotations

import contextlib
import gzip
import logging
import os
import posixpath
import tarfile
import tempfile
import zipfile
import zlib
from pathlib import Path
from typing import BinaryIO

from ..files import OWNER_MARKER, PARTIAL_SENTINEL, atomic_output_dir, default_data_dir, exclusive_lock, names, shown
from ..imaging import IMAGE_SUFFIXES
from .fetch import discard_download, open_download

log = logging.getLogger(__name__)
DEFAULT_URL = "http://efrosgans.eecs.berkeley.edu/pix2pix/datasets"
OFFICIAL_DATASETS = {
    # name: what it is (sizes from the authors' server, for the --help text)
    "facades": "400 building facades <- architectural labels (~30 MB)",
    "cityscapes": "2,975 street scenes <-> semantic labels (~100 MB)",
    "maps": "1,096 aerial photos <-> Google maps (~250 MB)",
    "edges2shoes": "50k shoe photos <- edges (~2 GB)",
    "edges2handbags": "137k handbag photos <- edges (~8.6 GB)",
    "night2day": "20k night -> day webcam pictures (~1.9 GB)",
}
_MB = 1 << 20
# The archives' sizes as the authors' server publishes them (rounded up). A download larger than
# 1.5x this is refused (from Content-Length) or stopped (a server that never ends its response).
PUBLISHED_BYTES = {"facades": 30 * _MB, "cityscapes": 100 * _MB, "maps": 250 * _MB,
                   "edges2shoes": 2100 * _MB, "edges2handbags": 8800 * _MB, "night2day": 1950 * _MB}
# Unpacking limits: the datasets are JPEGs, which tar and gzip cannot shrink, so what comes out is
# about what went in. More than 3x the archive (plus 16 MB for small archives' headers) is a bomb.
MAX_MEMBERS = 300_000  # edges2handbags, the largest, has ~138k files


class CorruptArchiveError(RuntimeError):
    """The archive itself is bad (truncated, not gzip/tar, unsafe, no dataset)."""


def max_download_bytes(name: str) -> int:
    return int(PUBLISHED_BYTES.get(name, 100 * _MB) * 1.5)


# --- unpacking -------------------------------------------------------------------------------------
def _check_member(member: tarfile.TarInfo, archive: Path) -> None:
    """Raise if extracting `member` could write outside the target folder."""
    name = member.name
    bad = None
    normalised = posixpath.normpath(name)
    if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        bad = "absolute path"
    elif normalised == ".." or normalised.startswith("../") or ".." in name.replace("\\", "/").split("/"):
        bad = "path with '..'"
    elif member.issym() or member.islnk():
        # Refused outright: the datasets hold only files and folders, and links that each look
        # harmless can chain outside the folder (a -> ., b -> a/../x) where no text check sees it.
        bad = f"link to '{shown(member.linkname)}'; the datasets contain only files and folders"
    elif not (member.isfile() or member.isdir()):
        bad = "special file (device, fifo)"
    if bad:
        raise CorruptArchiveError(f"{shown(archive)}: unsafe archive member '{shown(name)}' ({bad}); refusing to extract")


def safe_extract(archive: str | Path, dest: str | Path, *, fileobj: BinaryIO | None = None,
                 max_bytes: int | None = None, max_members: int = MAX_MEMBERS) -> None:
    """Extract a tar archive (read from `fileobj` when given) into `dest`, refusing members that
    would land outside it, and bombs.

    Limits, checked from the archive's index before anything is written: at most `max_members`
    members and `max_bytes` bytes in all (default: 3x the archive's size + 16 MB).
    CorruptArchiveError: the archive is bad (truncated, unsafe, over the limits). OSError: writing
    failed (a full disk, a name too long) - the archive is fine.
    """
    archive, dest = Path(archive), Path(dest)
    with contextlib.ExitStack() as stack:
        f = fileobj or stack.enter_context(open(archive, "rb"))
        size = os.fstat(f.fileno()).st_size
        _extract(f, archive, dest, size, 3 * size + 16 * _MB if max_bytes is None else max_bytes, max_members)


def _extract(f: BinaryIO, archive: Path, dest: Path, size: int, max_bytes: int, max_members: int) -> None:
    try:
        with tarfile.open(fileobj=f, mode="r:*") as tar:
            members = []
            total = 0
            for member in tar:  # reads the index as it goes: a bomb of members stops at the limit
                _check_member(member, archive)
                members.append(member)
                total += member.size
                if len(members) > max_members:
                    raise CorruptArchiveError(f"{shown(archive)}: more than {max_members:,} members; refusing to extract")
                if total > max_bytes:
                    raise CorruptArchiveError(f"{shown(archive)}: unpacks to more than {max_bytes / _MB:.0f} MB (from a "
                                              f"{size / _MB:.1f} MB archive); refusing to extract")
            if hasattr(tarfile, "data_filter"):  # Python >= 3.11.4 / 3.12: the library's own guard
                tar.extractall(dest, members=members, filter="data")
            else:  # pragma: no cover - older Pythons rely on _check_member alone
                tar.extractall(dest, members=members)
    except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile, ValueError) as err:
        if isinstance(err, getattr(tarfile, "FilterError", ())):
            raise CorruptArchiveError(f"{shown(archive)}: unsafe archive member ({shown(err)}); refusing to extract") from err
        raise CorruptArchiveError(f"{shown(archive)}: corrupt or truncated archive ({type(err).__name__}: "
                                  f"{shown(err)})") from err
    except OSError as err:  # the disk, not the archive
        kept = OSError(f"could not unpack {shown(archive)} into {shown(dest.parent)} ({shown(err.strerror or err)}); "
                       "the archive is kept: free some space (or fix the path) and run the same command again")
        kept.errno = err.errno
        raise kept from err


def _unpack(f: BinaryIO, archive: Path, name: str, target: Path) -> None:
    """Unpack the open archive into the dataset folder `target`: whole, with train/ pairs, or not at all."""
    with atomic_output_dir(target, kind=f"{name} dataset", flag="--root/<name>") as tmp:
        staging = tmp / ".unpacking"  # beside the build's own files: no member can land on them
        staging.mkdir()
        f.seek(0)
        safe_extract(archive, staging, fileobj=f)
        held = sorted(p.name + "/" * p.is_dir() for p in staging.iterdir())
        inner = staging / name  # the official archives hold one folder named like the dataset
        entries = [*inner.iterdir(), *(p for p in staging.iterdir() if p != inner)] if inner.is_dir() \
            else list(staging.iterdir())
        for entry in entries:
            if entry.name in (OWNER_MARKER, PARTIAL_SENTINEL) or os.path.lexists(tmp / entry.name):
                raise CorruptArchiveError(f"{shown(archive)}: holds '{shown(entry.name)}' twice, or a name this "
                                          "library keeps for itself; refusing to extract")
            entry.rename(tmp / entry.name)
        if inner.is_dir():
            inner.rmdir()
        staging.rmdir()
        train = tmp / "train"
        if not (train.is_dir() and any(p.suffix.lower() in IMAGE_SUFFIXES and p.is_file() for p in train.iterdir())):
            raise CorruptArchiveError(f"{shown(archive)}: holds no train/ pairs (it held: {names(held) or 'nothing'}), "
                                      f"so it is no {name} dataset")


def download_dataset(name: str, root: str | Path | None = None, *, base_url: str = DEFAULT_URL,
                     progress: bool = True, keep_archive: bool = False) -> Path:
    """Download and unpack an official pix2pix dataset; returns `<root>/<name>`.

    Parameters:
        name (str)           -- facades, cityscapes, maps, edges2shoes, edges2handbags, night2day.
        root (path)          -- parent folder (None: `default_data_dir()`).
        base_url (str)       -- server folder holding `<name>.tar.gz`.
        progress (bool)      -- show a progress bar.
        keep_archive (bool)  -- keep the downloaded .tar.gz after a successful extraction.

    Does nothing when `<root>/<name>/train` already exists; a `<root>/<name>` folder of other files
    is refused, never replaced. Only a download this command made (its marker proves it) is ever
    deleted: when it is corrupt, or once unpacked. A `<name>.tar.gz` someone else put there is
    unpacked and kept, or refused and left as it is. An interrupted download is kept as `.part` and
    resumed; an archive that could not be unpacked for lack of space is kept.
    """
    if name not in OFFICIAL_DATASETS:
        raise ValueError(f"unknown dataset {shown(name)!r}: choose one of {', '.join(OFFICIAL_DATASETS)}")
    root = Path(root) if root is not None else default_data_dir()
    target = root / name
    if (target / "train").is_dir():
        return target
    root.mkdir(parents=True, exist_ok=True)
    archive = root / f"{name}.tar.gz"
    with exclusive_lock(root / f".{name}.tar.gz.lock", wait=True):
        if (target / "train").is_dir():  # another process unpacked it while we waited
            return target
        f, ours = open_download(f"{base_url.rstrip('/')}/{name}.tar.gz", archive, progress=progress,
                                max_bytes=max_download_bytes(name))
        with f:
            try:
                _unpack(f, archive, name, target)
            except CorruptArchiveError as err:
                if not ours:
                    raise CorruptArchiveError(f"{err}. {shown(archive)} is not a complete {name} archive and was not "
                                              "downloaded by this command; it is left as it is: move it away and run "
                                              "the same command again to download it") from None
                discard_download(archive, archive, f.fileno())
                raise CorruptArchiveError(f"{err}; the download is deleted: run the same command again to "
                                          "download it again") from None
            if not ours:
                log.info(f"{shown(archive)}: unpacked and kept (this command did not download it)")
            elif not keep_archive:
                discard_download(archive, archive, f.fileno())
    return target


# --- Carvana (Kaggle) ------------------------------------------------------------------------------

CARVANA_COMPETITION = "carvana-image-masking-challenge"
CARVANA_HELP = (
    "Carvana comes from Kaggle ({url}) and needs an account. Either\n"
    "  - pip install kaggle, put your API token in ~/.kaggle/kaggle.json (or set KAGGLE_USERNAME\n"
    "    and KAGGLE_KEY), accept the competition rules on the website, and run this again; or\n"
    "  - download train.zip and train_masks.zip by hand from the competition's Data tab and unzip\n"
    "    them to {root}/train/ (<car>_<NN>.jpg) and {root}/train_masks/ (<car>_<NN>_mask.gif).\n"
    "Then: python -m pix2pix_lib prepare --images {root}/train --masks {root}/train_masks "
    "--out {root}_pairs"
)


def _kaggle_credentials() -> bool:
    if os.environ.get("KAGGLE_USERNAME") and os.environ.get("KAGGLE_KEY"):
        return True
    config = Path(os.environ.get("KAGGLE_CONFIG_DIR", Path.home() / ".kaggle"))
    return (config / "kaggle.json").is_file()


def download_carvana(root: str | Path | None = None) -> Path:
    """Fetch Carvana's train images and masks through the Kaggle API; returns `<root>/carvana`.

    Only a missing `train/` or `train_masks/` is fetched: each zip is downloaded and unpacked in a
    temporary folder of its own and its folder renamed into place, so nothing a user put into
    `<root>/carvana` (a zip fetched by hand, their own images) is ever replaced or deleted. Without
    the `kaggle` package or credentials it raises RuntimeError explaining where to put the files.
    """
    root = (Path(root) if root is not None else default_data_dir()) / "carvana"
    url = f"https://www.kaggle.com/c/{CARVANA_COMPETITION}"
    missing = [folder for folder in ("train", "train_masks") if not os.path.lexists(root / folder)]
    if not missing:
        return root
    try:
        import kaggle  # noqa: F401  (authenticates on import; raises without credentials)
    except Exception as err:  # ImportError, or the package's own OSError about credentials
        raise RuntimeError(CARVANA_HELP.format(url=url, root=shown(root))) from err
    if not _kaggle_credentials():
        raise RuntimeError(CARVANA_HELP.format(url=url, root=shown(root)))
    root.mkdir(parents=True, exist_ok=True)
    for folder in missing:
        with tempfile.TemporaryDirectory(dir=root, prefix=f".{folder}.", suffix=".partial") as tmp:
            kaggle.api.competition_download_file(CARVANA_COMPETITION, f"{folder}.zip", path=tmp)
            with zipfile.ZipFile(Path(tmp) / f"{folder}.zip") as zf:
                if sum(info.file_size for info in zf.infolist()) > 3 * os.path.getsize(zf.filename) + 16 * _MB \
                        or len(zf.infolist()) > MAX_MEMBERS:
                    raise RuntimeError(f"{folder}.zip from Kaggle unpacks to far more than its size; refusing it")
                zf.extractall(Path(tmp) / "unpacked")  # zipfile strips '..' and absolute paths itself
            unpacked = Path(tmp) / "unpacked" / folder
            if not unpacked.is_dir():
                raise RuntimeError(f"{folder}.zip from Kaggle holds no {folder}/ folder; nothing was changed")
            if os.path.lexists(root / folder):
                raise RuntimeError(f"{shown(root / folder)}: appeared meanwhile; it is left as it is")
            unpacked.rename(root / folder)
    return root
