"""Writing files without ever destroying what the library did not make.

Three rules every command follows (README, "What a command may replace"):

1. **Whole or nothing.** A file is written under a unique temporary name in its own folder, then
   renamed over the target (`atomic_path`): a crash leaves the old file or none, never a truncated
   one, and two writers never share a temporary file.
2. **Only what we made.** A folder is replaced only when this library made it: it holds the marker
   file `OWNER_MARKER` (or a dataset manifest from before the marker existed), or it is empty or
   absent. Never a folder that is, or holds, an input; never a plain file (`check_replaceable`).
3. **One writer.** A folder being written holds a lock; a second writer is refused at once
   (`exclusive_lock`), or waits for the first to finish when that is what it wants.

Also here: `default_data_dir()`, where datasets land when the caller names no folder.
Everything here is plain Python: every layer above (data, training, generation) may use it.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

try:  # POSIX advisory locks; on Windows folders are not locked (documented in the README)
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None

OWNER_MARKER = ".made-by-pix2pix_lib"
# Dataset folders built before the marker existed: their manifest's name, the kind they are, and the
# only entries such a build writes (a folder with anything else in it is not taken for ours).
LEGACY_MANIFESTS = {"openmoji-line2color": ("openmoji dataset", {"train", "val", "manifest.json", "ATTRIBUTION.txt",
                                                                 "LICENSE.txt"}),
                    "masked-photos": ("masked-photo pairs", {"train", "val", "manifest.json"})}
PARTIAL_SENTINEL = ".pix2pix-partial"  # inside every temporary build folder: only those are ever cleared
_UMASK = os.umask(0o022)
os.umask(_UMASK)


class RefusedError(FileExistsError):
    """A command would replace or write into something it did not make. The message says what to do."""


class FolderBusyError(RuntimeError):
    """Another process is writing the same folder right now."""


class DiskFullError(OSError):
    """The disk filled up while `path` was being written; the file that was there before is intact."""

    def __init__(self, path: Path, what: str = "file", then: str = "run again"):
        super().__init__(f"disk full while writing {path}; the previous {what} is intact (free some space, then {then})")
        self.errno, self.path = errno.ENOSPC, Path(path)


def shown(path: str | Path) -> str:
    """A file name as one printable line: control characters (newlines, terminal escapes) escaped.

    Every message that names a file a user (or an archive) chose goes through here, so "one clear
    line" stays one line and a name cannot move the cursor or recolour the terminal.
    """
    text = str(path)
    return text if text.isprintable() else text.encode("unicode_escape", "backslashreplace").decode("ascii")


# --- files --------------------------------------------------------------------------------------
@contextlib.contextmanager
def atomic_path(path: str | Path, *, what: str = "file") -> Iterator[Path]:
    """Yield a unique temporary path beside `path`; on success it replaces `path`, on error it is removed.

    The temporary name (`.<name>.<random>.tmp`) is made by `tempfile.mkstemp`, so two processes
    writing the same file each get their own, and the last to finish wins. A full disk is reported
    as such ("disk full while writing <path>; the previous <what> is intact").
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(name)
    os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; a written file gets the usual permissions
    try:
        yield tmp
        os.replace(tmp, path)
    except (OSError, RuntimeError) as err:
        # torch.save reports a full disk as "[enforce fail at inline_container.cc] ... unexpected pos".
        if isinstance(err, DiskFullError):
            raise
        if (isinstance(err, OSError) and err.errno == errno.ENOSPC) or "unexpected pos" in str(err):
            raise DiskFullError(path, what) from None
        raise
    finally:
        tmp.unlink(missing_ok=True)


def write_text_atomic(path: str | Path, text: str) -> Path:
    with atomic_path(path) as tmp:
        Path(tmp).write_text(text, encoding="utf-8")
    return Path(path)


def write_json_atomic(path: str | Path, data) -> Path:
    """JSON with a trailing newline, written whole or not at all."""
    return write_text_atomic(path, json.dumps(data, indent=2) + "\n")


def read_json(path: str | Path) -> dict | None:
    """A JSON object from `path`, or None when the file is missing, unreadable or not an object."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


# --- what may be replaced -----------------------------------------------------------------------
def is_ours(folder: str | Path, kind: str | None = None) -> bool:
    """True when this library made `folder` (its marker) - as a `kind` folder, when a kind is named.

    A training run is no dataset: a builder replaces only a folder of its own kind.
    """
    folder = Path(folder)
    marker = read_json(folder / OWNER_MARKER)
    if marker is not None:
        return marker.get("made_by") == "pix2pix_lib" and kind in (None, marker.get("kind"))
    legacy = LEGACY_MANIFESTS.get((read_json(folder / "manifest.json") or {}).get("name"))
    return (legacy is not None and kind in (None, legacy[0])
            and {p.name for p in folder.iterdir()} <= legacy[1])


def mark_ours(folder: str | Path, kind: str) -> None:
    """Put the marker that lets later runs of the library replace `folder` (which must exist)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: the folder to mark is gone (removed by another process?)")
    write_json_atomic(folder / OWNER_MARKER, {"made_by": "pix2pix_lib", "kind": kind})


def _inside(child: Path, parent: Path) -> bool:
    return child == parent or parent in child.parents


def check_replaceable(out: str | Path, *, kind: str, inputs: Iterable[str | Path] = (), flag: str = "--out") -> None:
    """Raise RefusedError unless the folder `out` may be created or replaced by a command making a `kind`.

    Allowed: `out` does not exist, is an empty folder, or is a `kind` folder this library made.
    Refused: `out` is a file; a folder of someone else's files, or the library's of another kind (a
    training run is no dataset); the current folder or one above it; equal to an input or a folder
    holding one (replacing it would delete the input).
    """
    out = Path(out)
    resolved = out.resolve()
    if _inside(Path.cwd().resolve(), resolved):
        raise RefusedError(f"{out}: {flag} is the current folder or one above it; name a new folder for the {kind}")
    for source in inputs:
        src = Path(source).resolve()
        if _inside(src, resolved):
            what = "is" if src == resolved else "holds"
            raise RefusedError(f"{out}: {flag} {what} the input {source}; writing there would destroy it. "
                               f"Choose an output folder outside the inputs, e.g. {out.parent / (out.name + '_pairs')}")
    if out.is_symlink() or (out.exists() and not out.is_dir()):
        raise RefusedError(f"{out}: {flag} names an existing file, not a folder; choose a new folder name")
    if out.is_dir() and any(out.iterdir()) and not is_ours(out, kind):
        if is_ours(out):
            raise RefusedError(f"{out}: {flag} holds a {read_json(out / OWNER_MARKER)['kind']} of this library, not a "
                               f"{kind}; it is left as it is. Choose another folder")
        raise RefusedError(f"{out}: {flag} is a folder of other files this command did not make; it is left "
                           f"as it is. Choose a new folder (e.g. {out / 'dataset'}) or empty this one yourself")


def _remove_tree(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists() or path.is_symlink():
        path.unlink()


@contextlib.contextmanager
def atomic_output_dir(out_dir: str | Path, *, kind: str = "dataset", inputs: Iterable[str | Path] = (),
                      flag: str = "--out") -> Iterator[Path]:
    """Yield a fresh temporary folder beside `out_dir`; on success it replaces `out_dir` (marked as ours).

    Parameters:
        out_dir (path)  -- the final folder; `check_replaceable` decides whether it may be replaced.
        kind (str)      -- written into the marker (what the folder is).
        inputs (paths)  -- what the command reads: `out_dir` must be none of them and hold none.
        flag (str)      -- the option that named `out_dir`, for the error messages.

    Builders of the same folder take turns (a lock beside it). On any exception (KeyboardInterrupt
    included) the temporary folder is deleted and `out_dir` is left as it was; leftovers of a killed
    build (`.<name>.*.partial`) are cleared by the next one.
    """
    inputs = list(inputs)
    check_replaceable(out_dir, kind=kind, inputs=inputs, flag=flag)
    out_dir = Path(out_dir).resolve()
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    with exclusive_lock(out_dir.with_name(f".{out_dir.name}.lock"), wait=True):
        check_replaceable(out_dir, kind=kind, inputs=inputs, flag=flag)  # again: the last builder may have changed it
        # We hold the lock, so no build of this folder is running: its leftovers (a killed build's)
        # go. Only exact temporary names that hold our sentinel - never a sibling's or a user's.
        leftover = re.compile(re.escape(f".{out_dir.name}.") + r"[A-Za-z0-9_]{8}(\.old)?\.partial")
        for stale in out_dir.parent.iterdir():
            if leftover.fullmatch(stale.name) and (stale / PARTIAL_SENTINEL).is_file():
                _remove_tree(stale)
        tmp = Path(tempfile.mkdtemp(dir=out_dir.parent, prefix=f".{out_dir.name}.", suffix=".partial"))
        os.chmod(tmp, 0o777 & ~_UMASK)  # mkdtemp makes 0700; a dataset gets the usual permissions
        (tmp / PARTIAL_SENTINEL).touch()
        try:
            yield tmp
            (tmp / PARTIAL_SENTINEL).unlink()
            mark_ours(tmp, kind)
            old = Path(str(tmp)[: -len(".partial")] + ".old.partial")
            if out_dir.exists():
                out_dir.rename(old)  # the old data moves aside whole, never half-deleted under its name
                (old / PARTIAL_SENTINEL).touch()  # if we die now, the next build clears it
            tmp.rename(out_dir)
            _remove_tree(old)
        finally:
            if tmp.exists():
                _remove_tree(tmp)


# --- locks --------------------------------------------------------------------------------------
_HELD: set[str] = set()  # lock files this process holds


@contextlib.contextmanager
def exclusive_lock(lock_file: str | Path, *, wait: bool = False, what: str | None = None) -> Iterator[None]:
    """Hold an exclusive lock on `lock_file` for the block; the file exists only while it is held.

    wait=False: raise FolderBusyError at once when another process holds it (its pid is in the file).
    The kernel drops the lock when the process dies, even by `kill -9`: a stale file cannot block.
    Re-entrant within a process (a build inside `ensure_openmoji_dataset`'s lock takes it again).
    """
    lock_file = Path(lock_file)
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    key = str(lock_file.resolve())
    if fcntl is None or key in _HELD:
        yield
        return
    while True:
        try:  # never through a link: a planted symlink would make us truncate its target
            handle = os.fdopen(os.open(lock_file, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o644), "r+")
        except OSError as err:
            raise RefusedError(f"{lock_file}: cannot be used as a lock file ({err.strerror}); remove it") from None
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            handle.seek(0)
            pid = handle.read().strip() or "?"
            handle.close()
            raise FolderBusyError(f"{what or lock_file.parent}: another process (pid {pid}) is writing here "
                                  "right now; wait for it to finish or choose another folder") from None
        # The holder before us may have removed the file after we opened it: lock the file that is there now.
        try:
            same = os.fstat(handle.fileno()).st_ino == os.stat(lock_file).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        handle.close()
    try:
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        _HELD.add(key)
        yield
    finally:
        _HELD.discard(key)
        lock_file.unlink(missing_ok=True)  # before unlocking: a waiter then sees it is gone and retries
        fcntl.flock(handle, fcntl.LOCK_UN)
        handle.close()


PACKAGE_DIR = Path(__file__).resolve().parent  # .../pix2pix_lib



def default_data_dir() -> Path:
    """The folder datasets go to by default.

    In order: the environment variable ``PIX2PIX_DATA_DIR`` if set; the repository's ``data/``
    folder when the package sits in a checkout (its parent holds ``data/README.md`` and
    ``pyproject.toml``); otherwise ``~/.cache/pix2pix-course/data`` (an installed package must not
    write into site-packages).
    """
    env = os.environ.get("PIX2PIX_DATA_DIR")
    if env:
        return Path(env).expanduser()
    repo = PACKAGE_DIR.parent
    if (repo / "data" / "README.md").is_file() and (repo / "pyproject.toml").is_file():
        return repo / "data"
    return Path.home() / ".cache" / "pix2pix-course" / "data"
