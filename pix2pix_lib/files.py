"""Writing files without ever destroying what the library did not make.

Four rules every command follows (README, "What a command may replace"):

1. **Whole or nothing.** A file is written under a unique temporary name in its own folder, then
   renamed over the target (`atomic_path`): a crash leaves the old file or none, never a truncated one.
2. **Only what we wrote.** A folder the library made holds the marker `OWNER_MARKER`, listing every entry
   it wrote there (files with their content hash). A rebuild replaces only those: a user's other files
   move into the new build, an edited listed file makes it refuse (`audit`, `atomic_output_dir`).
3. **One writer.** A folder being written holds a lock; a second writer is refused at once
   (`exclusive_lock`), or waits for the first to finish when that is what it wants.
4. **No swap under a reader.** A dataset being read (`reading`) is not replaced: the rebuild is refused.

Also here (from `folders`): atomic writes of one file, locks, `default_data_dir()` (where datasets land).
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import NamedTuple

from .folders import (_UMASK, PACKAGE_DIR, DiskFullError, FolderBusyError, RefusedError,  # noqa: F401
                      atomic_path, default_data_dir, exclusive_lock, inventory, matches, names, no_readers,
                      read_json, reading, shown, write_json_atomic, write_text_atomic)

log = logging.getLogger(__name__)
OWNER_MARKER = ".made-by-pix2pix_lib"
PARTIAL_SENTINEL = ".pix2pix-partial"  # inside every temporary build folder: only those are ever cleared
# Folders from before the marker listed its files (an old marker, or a dataset manifest from before the
# marker): ours only if they hold nothing but what such a build writes (these patterns, one per depth).
LEGACY_MANIFESTS = {"openmoji-line2color": "openmoji dataset", "masked-photos": "masked-photo pairs"}
DATASET_SHAPE = ("train", "val", "test", "train/*", "val/*", "test/*", "manifest.json", "ATTRIBUTION.txt", "LICENSE.txt")
BUILD_SHAPES = {"openmoji dataset": ("train", "val", "train/*.png", "val/*.png", "manifest.json", "ATTRIBUTION.txt",
                                     "LICENSE.txt"),
                "masked-photo pairs": ("train", "val", "train/*.png", "val/*.png", "manifest.json"),
                "student notebooks": ("[0-9][0-9]_*.ipynb",)}


# --- what the library wrote ---------------------------------------------------------------------
class Survey(NamedTuple):
    """What `audit` found in a folder of ours (relative paths, parents before children)."""
    ours: list[str]     # listed (or named by the marker's `writes` patterns) and unchanged: may be replaced
    edited: list[str]   # listed files whose content changed since: never replaced
    missing: list[str]  # listed, but gone
    extras: list[str]   # not listed: the user's (the top of each such subtree); never removed


def audit(folder: str | Path, kind: str | None = None, *, content: bool = True) -> Survey | None:
    """What in `folder` this library wrote; None when it is not a folder of ours (of `kind`, if named).

    The marker lists what was written (`mark_ours`). An old marker without a list, or a dataset from before
    the marker, lists nothing: then the folder is ours in full only if it holds nothing but what such a
    build writes (BUILD_SHAPES[kind], default DATASET_SHAPE) and its manifest's counts hold; else None.
    content=False compares names only (an edit inside a file goes unseen).
    """
    folder = Path(folder)
    marker = read_json(folder / OWNER_MARKER)
    found_kind = marker.get("kind") if marker else LEGACY_MANIFESTS.get((read_json(folder / "manifest.json")
                                                                         or {}).get("name"))
    if (marker and marker.get("made_by") != "pix2pix_lib") or found_kind is None or kind not in (None, found_kind):
        return None
    found = inventory(folder, content=content)
    listed, writes = (marker or {}).get("files"), (marker or {}).get("writes")
    writes = [p for p in writes if isinstance(p, str)] if isinstance(writes, list) else []
    if not isinstance(listed, dict):  # from before the list: all or nothing
        listed, writes = {}, ()
        if not all(matches(rel, BUILD_SHAPES.get(found_kind, DATASET_SHAPE)) for rel in found):
            return None
        counts = (read_json(folder / "manifest.json") or {}).get("counts")
        for split in ("train", "val"):  # an extra pair looks like the build's: the manifest's count must hold
            n = counts.get(split) if isinstance(counts, dict) else None
            if isinstance(n, int) and n != sum(1 for rel in found if rel.startswith(split + "/")):
                return None
        listed = found
    ours, edited, extras = [], [], []
    seen = set()
    for rel, value in found.items():
        parent = rel.rpartition("/")[0]
        if parent and parent not in seen:
            continue  # inside something not ours: that is reported whole
        want = listed.get(rel)
        if want is None and not matches(rel, writes):
            extras.append(rel)
        elif want is not None and (want != value if content else (want == "dir") != (value == "dir")):
            edited.append(rel)
        else:
            ours.append(rel)
            seen.add(rel)
    return Survey(ours, edited, [rel for rel in listed if rel not in found], extras)


def is_ours(folder: str | Path, kind: str | None = None) -> bool:
    """True when this library made `folder` (its marker, or a dataset from before it) - of `kind`, if named.

    Made by us is not all ours: `audit` says which entries the library wrote; only those are ever replaced.
    """
    marker = read_json(Path(folder) / OWNER_MARKER)
    if marker is not None:
        return marker.get("made_by") == "pix2pix_lib" and kind in (None, marker.get("kind"))
    return audit(folder, kind, content=False) is not None


def mark_ours(folder: str | Path, kind: str, *, files: dict[str, str] | None = None, writes: Iterable[str] = ()) -> None:
    """Mark `folder` (which must exist) as a `kind` the library made, listing what it wrote there.

    files: {relative path: "dir" or content hash} (`inventory`); writes: patterns ("samples/epoch_*.png")
    of what a command keeps writing there (a training run). Nothing else in the folder is ever removed.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{shown(folder)}: the folder to mark is gone (removed by another process?)")
    write_json_atomic(folder / OWNER_MARKER, {"made_by": "pix2pix_lib", "kind": kind, "writes": sorted(writes),
                                              "files": files or {}})


def _remove_listed(folder: Path, ours: list[str]) -> None:
    """Remove the entries `audit` found ours, children first; a folder still holding anything stays."""
    for rel in reversed(ours):
        path = folder / rel
        if path.is_dir() and not path.is_symlink():
            with contextlib.suppress(OSError):
                path.rmdir()
        else:
            path.unlink(missing_ok=True)


def clear_ours(folder: str | Path, kind: str, *, flag: str = "--out") -> list[str]:
    """Remove from `folder` what the library wrote there; keep the rest (said in one line). Returns what was kept.

    Refused when `folder` is not a `kind` of ours, or a file it wrote was edited since.
    """
    folder = Path(folder)
    survey = audit(folder, kind)
    if survey is None:
        raise RefusedError(f"{shown(folder)}: {flag} holds files this command did not make; it is left as it is. "
                           f"Move them out or choose another {flag}")
    if survey.edited:
        raise RefusedError(_edited(folder, survey.edited, flag))
    _remove_listed(folder, survey.ours)
    if survey.extras:
        log.warning(f"{shown(folder)}: kept {names(survey.extras)} (not made by this command)")
    return survey.extras


def _edited(out: Path, edited: list[str], flag: str) -> str:
    return (f"{shown(out)}: {names(edited)} {'was' if len(edited) == 1 else 'were'} made by an earlier run of this "
            f"command and changed since; nothing was replaced. Move {'it' if len(edited) == 1 else 'them'} out "
            f"or choose another {flag}")


# --- what may be replaced -----------------------------------------------------------------------
def _inside(child: Path, parent: Path) -> bool:
    return child == parent or parent in child.parents


def check_replaceable(out: str | Path, *, kind: str, inputs: Iterable[str | Path] = (),
                      flag: str = "--out") -> Survey | None:
    """Raise RefusedError unless a command making a `kind` may (re)build the folder `out`; return its `audit`.

    Allowed: `out` does not exist, is empty, or is a `kind` folder of ours in which no listed file was
    edited (its other files are kept). Refused: `out` is a file; a folder of someone else's files, or
    the library's of another kind (a training run is no dataset); the current folder or one above it;
    an input or a folder holding one (replacing it would delete the input).
    """
    out = Path(out)
    resolved = out.resolve()
    if _inside(Path.cwd().resolve(), resolved):
        raise RefusedError(f"{shown(out)}: {flag} is the current folder or one above it; name a new folder for "
                           f"the {kind}")
    for source in inputs:
        src = Path(source).resolve()
        if _inside(src, resolved):
            what = "is" if src == resolved else "holds"
            raise RefusedError(f"{shown(out)}: {flag} {what} the input {shown(source)}; writing there would destroy it. "
                               f"Choose an output folder outside the inputs, e.g. {shown(out)}_pairs")
    if out.is_symlink() or (out.exists() and not out.is_dir()):
        raise RefusedError(f"{shown(out)}: {flag} names an existing file, not a folder; choose a new folder name")
    if not out.is_dir() or not any(out.iterdir()):
        return None
    survey = audit(out, kind)
    if survey is None:
        other = (read_json(out / OWNER_MARKER) or {}).get("kind") if is_ours(out) else None
        why = ("was made by an older version of this library that did not list its files, and holds other files now"
               if is_ours(out, kind) else f"holds a {shown(other)} of this library, not a {kind}" if other
               else "is a folder of other files this command did not make")
        raise RefusedError(f"{shown(out)}: {flag} {why}; it is left as it is. Move your files out, or choose "
                           f"another folder (e.g. {shown(out / 'dataset')})")
    if survey.edited:
        raise RefusedError(_edited(out, survey.edited, flag))
    return survey


def _remove_tree(path: Path) -> None:  # only a temporary build folder (its sentinel): all the build's
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists() or path.is_symlink():
        path.unlink()


def _settle(old: Path, new: Path) -> None:
    """After a swap: move what a user put into the replaced folder `old` over to `new`; remove what we wrote.

    What cannot move (its name is taken in `new`, or it was edited meanwhile) stays in `old`, said in one line.
    """
    survey = audit(old) or Survey([], [], [], [p for p in inventory(old, content=False) if "/" not in p])
    moved, stuck = [], list(survey.edited)
    for rel in survey.extras:
        if (new / rel).exists() or (new / rel).is_symlink():
            stuck.append(rel)
            continue
        (new / rel).parent.mkdir(parents=True, exist_ok=True)
        os.rename(old / rel, new / rel)
        moved.append(rel)
    _remove_listed(old, survey.ours)
    if moved:
        log.warning(f"{shown(new)}: kept {names(moved)} (not made by this command; moved into the new build unchanged)")
    if any(p.name not in (OWNER_MARKER, PARTIAL_SENTINEL) for p in old.iterdir()):
        log.warning(f"{shown(old)}: kept {names(stuck) or 'files that appeared during the build'} here (they could "
                    f"not move into {shown(new)}); move them where you want them")
        return
    for name in (OWNER_MARKER, PARTIAL_SENTINEL):
        (old / name).unlink(missing_ok=True)
    old.rmdir()


@contextlib.contextmanager
def atomic_output_dir(out_dir: str | Path, *, kind: str = "dataset", inputs: Iterable[str | Path] = (),
                      flag: str = "--out") -> Iterator[Path]:
    """Yield a fresh temporary folder beside `out_dir`; on success it replaces `out_dir` (marked as ours).

    Parameters:
        out_dir (path)  -- the final folder; `check_replaceable` decides whether it may be replaced.
        kind (str)      -- written into the marker (what the folder is).
        inputs (paths)  -- what the command reads: `out_dir` must be none of them and hold none.
        flag (str)      -- the option that named `out_dir`, for the error messages.

    The marker lists everything the block wrote. Of an earlier build only what its marker lists is
    replaced: the user's other files move into the new build unchanged (refused when the build
    writes the same name); an edited listed file, or a reader of the folder (`reading`), makes it
    refuse before anything changes. Builders of the same folder take turns (a lock beside it). On
    any exception (KeyboardInterrupt included) the temporary folder is deleted and `out_dir` is
    left as it was; what a killed build left (`.<name>.*.partial`) is settled by the next one.
    """
    inputs = list(inputs)
    check_replaceable(out_dir, kind=kind, inputs=inputs, flag=flag)
    out_dir = Path(out_dir).resolve()
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    # In order: the writers' lock; then settle a killed build's leftovers; then keep readers out.
    with exclusive_lock(out_dir.with_name(f".{out_dir.name}.lock"), wait=True), no_readers(_recover(out_dir), flag):
        check_replaceable(out_dir, kind=kind, inputs=inputs, flag=flag)  # again: the last builder may have changed it
        tmp = Path(tempfile.mkdtemp(dir=out_dir.parent, prefix=f".{out_dir.name}.", suffix=".partial"))
        os.chmod(tmp, 0o777 & ~_UMASK)  # mkdtemp makes 0700; a dataset gets the usual permissions
        (tmp / PARTIAL_SENTINEL).touch()
        try:
            yield tmp
            mark_ours(tmp, kind, files=inventory(tmp))
            (tmp / PARTIAL_SENTINEL).unlink()  # now complete: a kill from here on is settled, not deleted
            survey = check_replaceable(out_dir, kind=kind, inputs=inputs, flag=flag)  # edited during the build?
            clash = [rel for rel in (survey.extras if survey else []) if (tmp / rel).exists()]
            if clash:
                raise RefusedError(f"{shown(out_dir)}: {names(clash)} here {'is' if len(clash) == 1 else 'are'} not "
                                   f"from the earlier build, and the new one writes the same name; nothing was "
                                   f"replaced. Move {'it' if len(clash) == 1 else 'them'} out or choose another {flag}")
            if out_dir.exists():
                old = Path(str(tmp)[: -len(".partial")] + ".old.partial")
                out_dir.rename(old)  # the old data moves aside whole, never half-deleted under its name
                tmp.rename(out_dir)
                _settle(old, out_dir)
            else:
                tmp.rename(out_dir)
        finally:
            if tmp.exists():  # never holds a user's file: those move only after the swap
                _remove_tree(tmp)


def _recover(out_dir: Path) -> Path:
    """Settle what a killed build of `out_dir` left beside it (we hold its lock); returns `out_dir`.

    An unfinished build (its sentinel) goes. The previous folder moved aside (`.old.partial`) comes
    back if the new one never arrived, else its user files move into it; a finished build never
    swapped in goes (all of it is listed). Only exact temporary names: never a sibling's or a user's.
    """
    leftover = re.compile(re.escape(f".{out_dir.name}.") + r"[A-Za-z0-9_]{8}(\.old)?\.partial")
    stale = [p for p in out_dir.parent.iterdir() if leftover.fullmatch(p.name) and p.is_dir() and not p.is_symlink()]
    for path in sorted(stale, key=lambda p: not p.name.endswith(".old.partial")):
        if (path / PARTIAL_SENTINEL).is_file():
            _remove_tree(path)
        elif not out_dir.exists() and path.name.endswith(".old.partial"):
            path.rename(out_dir)
        elif (path / OWNER_MARKER).is_file():
            _settle(path, out_dir)
    return out_dir
