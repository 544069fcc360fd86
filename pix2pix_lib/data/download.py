"""The official pix2pix datasets, downloaded by name from the authors' server.

    python -m pix2pix_lib download facades --root data

fetches http://efrosgans.eecs.berkeley.edu/pix2pix/datasets/facades.tar.gz (the address the
paper's `datasets/download_pix2pix_dataset.sh` uses) and unpacks it to `data/facades/{train,val}`.

What makes it safe to run again and again:
- the archive is downloaded to `<name>.tar.gz.part`; a broken download resumes from where it
  stopped (HTTP Range) and the size is checked against the server's Content-Length;
- extraction refuses members that would land outside the target (absolute paths, `..`, links
  pointing out, devices) - tarfile's own "data" filter plus our check with a clear message;
- extraction goes to a temporary folder renamed into place at the end: a failure leaves no
  half-extracted dataset behind.
"""

from __future__ import annotations

import argparse
import http.client
import os
import posixpath
import tarfile
import urllib.error
import urllib.request
from pathlib import Path

from ..files import atomic_output_dir
from .paths import default_data_dir

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
CHUNK = 1 << 16


def _download(url: str, dest: Path, *, progress: bool, timeout: float = 60.0) -> Path:
    """Download `url` to `dest`, resuming `dest.part` if present. Returns `dest`."""
    from tqdm.auto import tqdm

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
            return _download(url, dest, progress=progress, timeout=timeout)
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
        raise RuntimeError(f"{archive}: unsafe archive member {name!r} ({bad}); refusing to extract")


def safe_extract(archive: str | Path, dest: str | Path) -> None:
    """Extract a tar archive into `dest`, refusing any member that would land outside it."""
    archive, dest = Path(archive), Path(dest)
    try:
        with tarfile.open(archive) as tar:
            members = tar.getmembers()  # reads the whole index: a truncated archive fails here
            for member in members:
                _check_member(member, archive)
            if hasattr(tarfile, "data_filter"):  # Python >= 3.11.4 / 3.12: the library's own guard
                tar.extractall(dest, members=members, filter="data")
            else:  # pragma: no cover - older Pythons rely on _check_member alone
                tar.extractall(dest, members=members)
    except (tarfile.TarError, EOFError, OSError, ValueError) as err:
        if isinstance(err, getattr(tarfile, "FilterError", ())):
            raise RuntimeError(f"{archive}: unsafe archive member ({err}); refusing to extract") from err
        raise RuntimeError(f"{archive}: corrupt or truncated archive ({type(err).__name__}: {err}); "
                           "delete it and download again") from err


def download_dataset(name: str, root: str | Path | None = None, *, base_url: str = DEFAULT_URL,
                     progress: bool = True, keep_archive: bool = False) -> Path:
    """Download and unpack an official pix2pix dataset; returns `<root>/<name>`.

    Parameters:
        name (str)           -- facades, cityscapes, maps, edges2shoes, edges2handbags, night2day.
        root (path)          -- parent folder (None: `default_data_dir()`).
        base_url (str)       -- server folder holding `<name>.tar.gz`.
        progress (bool)      -- show a progress bar.
        keep_archive (bool)  -- keep the .tar.gz after a successful extraction.

    Does nothing when `<root>/<name>/train` already exists. A corrupt archive is deleted (the next
    run downloads it again); an interrupted download is kept as `.part` and resumed.
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
        _download(f"{base_url.rstrip('/')}/{name}.tar.gz", archive, progress=progress)
    try:
        with atomic_output_dir(target) as tmp:
            safe_extract(archive, tmp)
            inner = tmp / name
            if inner.is_dir():  # the official archives hold one folder named like the dataset
                for child in inner.iterdir():
                    child.rename(tmp / child.name)
                inner.rmdir()
            if not any(tmp.iterdir()):
                raise RuntimeError(f"{archive}: the archive is empty")
    except RuntimeError:
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
    import zipfile

    root.mkdir(parents=True, exist_ok=True)
    for member in ("train.zip", "train_masks.zip"):
        kaggle.api.competition_download_file(CARVANA_COMPETITION, member, path=str(root))
        with zipfile.ZipFile(root / member) as zf:
            zf.extractall(root)  # zipfile strips '..' and absolute paths itself
        (root / member).unlink()
    return root


# --- command line ------------------------------------------------------------------------------


def _cli(args: argparse.Namespace) -> int:
    if args.name == "carvana":
        path = download_carvana(args.root)
    else:
        path = download_dataset(args.name, args.root, base_url=args.base_url)
    print(path)
    return 0


def register_cli(subparsers) -> None:
    listing = "; ".join(f"{k}: {v}" for k, v in OFFICIAL_DATASETS.items())
    p = subparsers.add_parser(
        "download", help="download an official pix2pix dataset (or Carvana via Kaggle)",
        description="Download and unpack an official pix2pix dataset from the paper authors' "
                    f"server into <root>/<name>/{{train,val}}. Datasets: {listing}. 'carvana' "
                    "goes through the Kaggle API (needs an account). Interrupted downloads resume.")
    p.add_argument("name", choices=[*OFFICIAL_DATASETS, "carvana"], help="dataset to download")
    p.add_argument("--root", default=None,
                   help="parent folder (default: $PIX2PIX_DATA_DIR, the checkout's data/, or "
                        "~/.cache/pix2pix-course/data)")
    p.add_argument("--base-url", default=DEFAULT_URL, help=f"server folder (default {DEFAULT_URL})")
    p.set_defaults(func=_cli)
