"""The official pix2pix datasets, downloaded by name from the authors' server.

    python -m pix2pix_lib download facades --root data

fetches http://efrosgans.eecs.berkeley.edu/pix2pix/datasets/facades.tar.gz (the address the
paper's `datasets/download_pix2pix_dataset.sh` uses) and unpacks it to `data/facades/{train,val}`.

What makes it safe to run again and again:
- the archive is downloaded to `<name>.tar.gz.part`; a broken download resumes from where it
  stopped (HTTP Range) and the size is checked against the server's Content-Length;
- the download stops past 1.5x the archive's published size (a server that never ends);
- extraction refuses members that would land outside the target (absolute paths, `..`, links,
  devices) - tarfile's own "data" filter plus our check with a clear message - and archives that
  unpack to far more than their size or hold too many members;
- extraction goes to a temporary folder renamed into place at the end: a failure leaves no
  half-extracted dataset behind.
"""

from __future__ import annotations

import gzip
import http.client
import os
import posixpath
import tarfile
import urllib.error
import urllib.request
import zipfile
import zlib
from pathlib import Path

from tqdm.auto import tqdm

from ..files import atomic_output_dir
from ..files import default_data_dir

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
CHUNK = 1 << 16


class CorruptArchiveError(RuntimeError):
    """The archive itself is bad (truncated, not gzip/tar, unsafe): it must be downloaded again."""


def max_download_bytes(name: str) -> int:
    return int(PUBLISHED_BYTES.get(name, 100 * _MB) * 1.5)


def _download(url: str, dest: Path, *, progress: bool, timeout: float = 60.0, max_bytes: int | None = None) -> Path:
    """Download `url` to `dest`, resuming `dest.part` if present. Returns `dest`.

    More than `max_bytes` (announced, or received) stops the download with an error: a wrong or
    hostile server cannot fill the disk.
    """
    part = dest.with_name(dest.name + ".part")
    have = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"User-Agent": "pix2pix-course"})
    if have:
        request.add_header("Range", f"bytes={have}-")
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as err:
        if err.code == 416 and have:  # our partial file is not a prefix the server knows: restart
            part.unlink()
            return _download(url, dest, progress=progress, timeout=timeout, max_bytes=max_bytes)
        raise RuntimeError(f"{url}: download failed (HTTP {err.code} {err.reason})") from err
    except urllib.error.URLError as err:
        raise RuntimeError(f"{url}: cannot connect ({err.reason}); check the network or --base-url") from err

    with response:
        length = response.headers.get("Content-Length")
        if response.status == 206:
            # Content-Range: bytes START-END/TOTAL
            content_range = response.headers.get("Content-Range", "")
            start = int(content_range.split()[1].split("-")[0]) if content_range.startswith("bytes ") else have
            if start != have:
                raise RuntimeError(f"{url}: server resumed at byte {start}, expected {have}; delete {part} "
                                   "and run the same command again to download from the start")
            total = int(content_range.rsplit("/", 1)[1]) if "/" in content_range and not content_range.endswith("*") \
                else (have + int(length) if length else None)
            mode = "ab"
        else:  # 200: the whole file (a server without Range support restarts from zero)
            have, mode = 0, "wb"
            total = int(length) if length else None
        if max_bytes is not None and total is not None and total > max_bytes:
            raise RuntimeError(f"{url}: the server announces {total / _MB:.0f} MB, more than the "
                               f"{max_bytes / _MB:.0f} MB this dataset is published at; refusing to download it")
        with open(part, mode) as f, tqdm(total=total, initial=have, unit="B", unit_scale=True,
                                          unit_divisor=1024, desc=dest.name, disable=not progress) as bar:
            while True:
                try:
                    chunk = response.read(CHUNK)
                except (OSError, ValueError, http.client.HTTPException) as err:  # reset, IncompleteRead, ...
                    raise RuntimeError(f"{url}: download interrupted after {f.tell()} bytes ({err}); "
                                       "run the same command again to resume") from err
                if not chunk:
                    break
                if max_bytes is not None and f.tell() + len(chunk) > max_bytes:
                    f.close()
                    part.unlink(missing_ok=True)
                    raise RuntimeError(f"{url}: the response goes on past {max_bytes / _MB:.0f} MB, more than this "
                                       "dataset is published at; stopped and deleted the partial file")
                f.write(chunk)
                bar.update(len(chunk))
    got = part.stat().st_size
    if total is not None and got != total:
        raise RuntimeError(f"{url}: incomplete download, got {got} of {total} bytes; the partial file "
                           f"{part} is kept, run the same command again to resume")
    part.replace(dest)
    return dest


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
        bad = f"link to {member.linkname!r}; the datasets contain only files and folders"
    elif not (member.isfile() or member.isdir()):
        bad = "special file (device, fifo)"
    if bad:
        raise CorruptArchiveError(f"{archive}: unsafe archive member {name!r} ({bad}); refusing to extract")


def safe_extract(archive: str | Path, dest: str | Path, *, max_bytes: int | None = None,
                 max_members: int = MAX_MEMBERS) -> None:
    """Extract a tar archive into `dest`, refusing members that would land outside it, and bombs.

    Limits, checked from the archive's index before anything is written: at most `max_members`
    members and `max_bytes` bytes in all (default: 3x the archive's size + 16 MB).
    CorruptArchiveError: the archive is bad (truncated, unsafe, over the limits). OSError: writing
    failed (a full disk, a name too long) - the archive is fine and is kept.
    """
    archive, dest = Path(archive), Path(dest)
    if max_bytes is None:
        max_bytes = 3 * archive.stat().st_size + 16 * _MB
    try:
        with tarfile.open(archive) as tar:
            members = []
            total = 0
            for member in tar:  # reads the index as it goes: a bomb of members stops at the limit
                _check_member(member, archive)
                members.append(member)
                total += member.size
                if len(members) > max_members:
                    raise CorruptArchiveError(f"{archive}: more than {max_members:,} members; refusing to extract")
                if total > max_bytes:
                    raise CorruptArchiveError(f"{archive}: unpacks to more than {max_bytes / _MB:.0f} MB (from a "
                                              f"{archive.stat().st_size / _MB:.1f} MB archive); refusing to extract")
            if hasattr(tarfile, "data_filter"):  # Python >= 3.11.4 / 3.12: the library's own guard
                tar.extractall(dest, members=members, filter="data")
            else:  # pragma: no cover - older Pythons rely on _check_member alone
                tar.extractall(dest, members=members)
    except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile, ValueError) as err:
        if isinstance(err, getattr(tarfile, "FilterError", ())):
            raise CorruptArchiveError(f"{archive}: unsafe archive member ({err}); refusing to extract") from err
        raise CorruptArchiveError(f"{archive}: corrupt or truncated archive ({type(err).__name__}: {err}); "
                                  "delete it and download again") from err
    except OSError as err:  # the disk, not the archive: keep the download
        kept = OSError(f"could not unpack {archive} into {dest.parent} ({err.strerror or err}); the archive "
                       "is kept: free some space (or fix the path) and run the same command again")
        kept.errno = err.errno
        raise kept from err


def download_dataset(name: str, root: str | Path | None = None, *, base_url: str = DEFAULT_URL,
                     progress: bool = True, keep_archive: bool = False) -> Path:
    """Download and unpack an official pix2pix dataset; returns `<root>/<name>`.

    Parameters:
        name (str)           -- facades, cityscapes, maps, edges2shoes, edges2handbags, night2day.
        root (path)          -- parent folder (None: `default_data_dir()`).
        base_url (str)       -- server folder holding `<name>.tar.gz`.
        progress (bool)      -- show a progress bar.
        keep_archive (bool)  -- keep the .tar.gz after a successful extraction.

    Does nothing when `<root>/<name>/train` already exists; a `<root>/<name>` folder of other files
    is refused, never replaced. A corrupt archive is deleted (the next run downloads it again); one
    that could not be unpacked for lack of space is kept; an interrupted download is kept as
    `.part` and resumed.
    """
    if name not in OFFICIAL_DATASETS:
        raise ValueError(f"unknown dataset {name!r}: choose one of {', '.join(OFFICIAL_DATASETS)}")
    root = Path(root) if root is not None else default_data_dir()
    target = root / name
    if (target / "train").is_dir():
        return target
    root.mkdir(parents=True, exist_ok=True)
    archive = root / f"{name}.tar.gz"
    if not archive.exists():
        _download(f"{base_url.rstrip('/')}/{name}.tar.gz", archive, progress=progress,
                  max_bytes=max_download_bytes(name))
    try:
        with atomic_output_dir(target, kind=f"{name} dataset", flag="--root/<name>") as tmp:
            safe_extract(archive, tmp)
            inner = tmp / name
            if inner.is_dir():  # the official archives hold one folder named like the dataset
                for child in inner.iterdir():
                    child.rename(tmp / child.name)
                inner.rmdir()
            if not any(tmp.iterdir()):
                raise CorruptArchiveError(f"{archive}: the archive is empty")
    except CorruptArchiveError:
        archive.unlink(missing_ok=True)  # a bad archive must not be "resumed" next time
        raise
    if not keep_archive:
        archive.unlink(missing_ok=True)
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

    Without the `kaggle` package or credentials it raises RuntimeError explaining where to put
    the files by hand.
    """
    root = (Path(root) if root is not None else default_data_dir()) / "carvana"
    url = f"https://www.kaggle.com/c/{CARVANA_COMPETITION}"
    if (root / "train").is_dir() and (root / "train_masks").is_dir():
        return root
    try:
        import kaggle  # noqa: F401  (authenticates on import; raises without credentials)
    except Exception as err:  # ImportError, or the package's own OSError about credentials
        raise RuntimeError(CARVANA_HELP.format(url=url, root=root)) from err
    if not _kaggle_credentials():
        raise RuntimeError(CARVANA_HELP.format(url=url, root=root))
    root.mkdir(parents=True, exist_ok=True)
    for member in ("train.zip", "train_masks.zip"):
        kaggle.api.competition_download_file(CARVANA_COMPETITION, member, path=str(root))
        with zipfile.ZipFile(root / member) as zf:
            zf.extractall(root)  # zipfile strips '..' and absolute paths itself
        (root / member).unlink()
    return root


