"""Folders several processes share: printable names, locks for writers and readers, what a folder holds.

- `shown(path)`: a file name as one printable line, for every message that names a user's file.
- `atomic_path(file)`: a file written whole or not at all (a unique temporary name, then a rename).
- `exclusive_lock(file)`: one writer at a time (a second is refused, or waits).
- `reading(folder)`: a shared lock a reader (a training) holds on a dataset folder; `no_readers(folder)`
  is what a rebuild takes before it replaces the folder, and it refuses at once while anyone reads.
- `inventory(folder)`: every entry under a folder with its content hash, which is how `files` lists
  what the library wrote and recognises a file a user edited since.
- `default_data_dir()`: where datasets land when the caller names no folder.

Plain Python, the lowest layer: `files` builds the "only what we made" rules on it.
"""

from __future__ import annotations

import contextlib
import errno
import fnmatch
import hashlib
import json
import os
import signal
import stat
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

import platformdirs

try:  # POSIX advisory locks; on Windows folders are not locked (documented in the README)
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None

BOOKKEEPING = {".made-by-pix2pix_lib", ".pix2pix-partial", ".lock"}  # the library's marker, sentinel, lock


class RefusedError(FileExistsError):
    """A command would replace or write into something it did not make. The message says what to do."""


class FolderBusyError(RuntimeError):
    """Another process is writing (or reading) the same folder right now."""


def shown(path: str | Path) -> str:
    """A file name as one printable line: control characters (newlines, terminal escapes) escaped.

    Every message that names a file a user (or an archive) chose goes through here, so "one clear
    line" stays one line and a name cannot move the cursor or recolour the terminal.
    """
    text = str(path)
    return text if text.isprintable() else text.encode("unicode_escape", "backslashreplace").decode("ascii")

_UMASK = os.umask(0o022)
os.umask(_UMASK)


class DiskFullError(OSError):
    """The disk filled up while `path` was being written; the file that was there before is intact."""

    def __init__(self, path: Path, what: str = "file", then: str = "run again"):
        super().__init__(f"disk full while writing {shown(path)}; the previous {what} is intact (free some space, "
                         f"then {then})")
        self.errno, self.path = errno.ENOSPC, Path(path)


# --- one file, whole or nothing --------------------------------------------------------------------------------------
@contextlib.contextmanager
def atomic_path(path: str | Path, *, what: str = "file") -> Iterator[Path]:
    """Yield a unique temporary path beside `path`; on success it replaces `path`, on error it is removed.

    The temporary name (`.<name>.<random>.tmp`) is made by `tempfile.mkstemp`, so two processes
    writing the same file each get their own, and the last to finish wins. A full disk is reported
    as such ("disk full while writing <path>; the previous <what> is intact").
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Ctrl-C / SIGTERM wait while the temporary file is made and named, and land inside the `try`
    # below that removes it: a stop in between would leave it behind.
    stops = {signal.SIGINT, signal.SIGTERM} if hasattr(signal, "pthread_sigmask") else set()
    held = signal.pthread_sigmask(signal.SIG_BLOCK, stops) if stops else None
    try:
        fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except BaseException:
        if stops:
            signal.pthread_sigmask(signal.SIG_SETMASK, held)
        raise
    os.close(fd)
    tmp = Path(name)
    try:
        if stops:
            signal.pthread_sigmask(signal.SIG_SETMASK, held)  # a stop that waited is raised here
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; a written file gets the usual permissions
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


def names(rels: list[str], most: int = 5) -> str:
    """'a, b, c and 4 more': a list of file names for one line."""
    more = f" and {len(rels) - most} more" if len(rels) > most else ""
    return ", ".join(shown(r) for r in rels[:most]) + more


# --- what a folder holds -------------------------------------------------------------------------
def _digest(path: str) -> str:
    h = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def inventory(folder: str | Path, *, content: bool = True) -> dict[str, str]:
    """Every entry under `folder`: its relative path ("train/a.png") -> "dir", or the file's content hash.

    Parents come before their children. content=False writes "file" instead of hashing (names only,
    fast). A link or anything else that is neither a file nor a folder is "other" (never followed).
    Left out: the library's bookkeeping at the top (marker, sentinel, lock).
    """
    found: dict[str, str] = {}

    def walk(rel: str) -> None:
        with os.scandir(Path(folder) / rel) as entries:
            for entry in sorted(entries, key=lambda e: e.name):
                name = rel + entry.name
                if rel == "" and entry.name in BOOKKEEPING:
                    continue
                if entry.is_dir(follow_symlinks=False):
                    found[name] = "dir"
                    walk(name + "/")
                elif entry.is_file(follow_symlinks=False):
                    found[name] = _digest(entry.path) if content else "file"
                else:
                    found[name] = "other"

    walk("")
    return found


def matches(rel: str, patterns: Iterable[str]) -> bool:
    """True when the relative path `rel` matches one of the patterns (fnmatch, one pattern per depth)."""
    return any(rel.count("/") == p.count("/") and fnmatch.fnmatchcase(rel, p) for p in patterns)


# --- locks ---------------------------------------------------------------------------------------
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
            raise RefusedError(f"{shown(lock_file)}: cannot be used as a lock file ({err.strerror}); remove it") from None
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            handle.seek(0)
            pid = handle.read().strip() or "?"
            handle.close()
            raise FolderBusyError(f"{shown(what or lock_file.parent)}: another process (pid {pid}) is writing here "
                                  "right now; wait for it to finish or choose another folder") from None
        # The holder before us may have removed the file after we opened it: lock the file that is there now.
        try:
            same = os.fstat(handle.fileno()).st_ino == os.stat(lock_file).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        handle.close()
    # Ours holds a pid, or nothing (a holder killed before writing it): any other file is someone's own.
    if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode) or not _pid_or_empty(os.pread(handle.fileno(), 64, 0)):
        handle.close()
        raise RefusedError(f"{shown(lock_file)}: a file of someone else's where this library keeps its lock; it is "
                           "left as it is. Move it away, or choose another folder")
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


def _pid_or_empty(text: bytes) -> bool:
    return not text.strip() or text.strip().isdigit()


# Readers and a rebuild lock the dataset folder itself (flock on its directory): no lock file is
# written anywhere, readers and writers always meet on the same inode, and the kernel drops the lock
# when a reader dies. A rebuild swaps in a new folder (a new inode): a reader that waited for it
# sees the inode change and locks the new folder instead.
def _lock_folder(folder: Path, how: int) -> int | None:
    """An open descriptor of `folder` holding flock `how`, or None (no such folder, or no locks here)."""
    while fcntl is not None:
        try:
            fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        except OSError:
            return None  # missing or unreadable: the reader says so itself, and there is nothing to replace
        try:
            fcntl.flock(fd, how)
            if os.fstat(fd).st_ino == os.stat(folder).st_ino:
                return fd
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)  # the folder was replaced while we waited: lock the one there now
    return None


def _holder(fd: int) -> str:
    """The pid holding a lock on `fd`'s inode, from /proc/locks (Linux); '?' elsewhere."""
    inode = f":{os.fstat(fd).st_ino}"
    with contextlib.suppress(OSError):
        for line in Path("/proc/locks").read_text().splitlines():
            parts = line.split()
            if len(parts) > 5 and "->" not in parts and parts[5].endswith(inode):
                return parts[4]
    return "?"


@contextlib.contextmanager
def reading(folder: str | Path) -> Iterator[Path]:
    """Hold a shared lock on the dataset `folder` while reading it: no rebuild replaces it meanwhile.

    Any number of readers share it; a rebuild (`files.atomic_output_dir`) is refused while one holds
    it. A reader that starts during a rebuild waits for it, then reads the new folder.
    Use: `with reading(data_root): ...train...`. Yields `folder` as a Path.
    """
    folder = Path(folder)
    fd = _lock_folder(folder, fcntl.LOCK_SH) if fcntl is not None else None
    try:
        yield folder
    finally:
        if fd is not None:
            os.close(fd)


@contextlib.contextmanager
def no_readers(folder: Path, flag: str = "--out") -> Iterator[None]:
    """Keep readers out of `folder` for the block (a rebuild); FolderBusyError at once while one reads it.

    The caller holds the folder's writer lock, so the folder cannot be swapped under this one.
    """
    fd = None
    if fcntl is not None and folder.is_dir() and not folder.is_symlink():
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = _holder(fd)
            os.close(fd)
            raise FolderBusyError(f"{shown(folder)}: a training (pid {pid}) is reading this dataset; wait for it "
                                  f"to finish or build into another {flag}") from None
    try:
        yield
    finally:
        if fd is not None:
            os.close(fd)


PACKAGE_DIR = Path(__file__).resolve().parent  # .../pix2pix_lib


def default_data_dir() -> Path:
    """The folder datasets go to by default.

    In order: the environment variable ``PIX2PIX_DATA_DIR`` if set; ``data/`` in the course folder
    made by ``python -m pix2pix_lib notebooks DIR`` that holds the current folder (a pip-installed
    course keeps its data beside its runs); the repository's ``data/`` folder when the package sits
    in a checkout (its parent holds ``data/README.md`` and ``pyproject.toml``); otherwise the user's
    cache folder (an installed package must not write into site-packages), as the platform names it:
    ``$XDG_CACHE_HOME/pix2pix-course/data`` or ``~/.cache/pix2pix-course/data`` on Linux,
    ``~/Library/Caches/pix2pix-course/data`` on macOS, ``%LOCALAPPDATA%\\pix2pix-course\\Cache\\data``
    on Windows.
    """
    env = os.environ.get("PIX2PIX_DATA_DIR")
    if env:
        return Path(env).expanduser()
    here = Path.cwd().resolve()
    for folder in (here, *here.parents):  # course.py's test for a copied course, which it cannot import
        if (read_json(folder / ".made-by-pix2pix_lib") or {}).get("kind") == "course":
            return folder / "data"
    repo = PACKAGE_DIR.parent
    if (repo / "data" / "README.md").is_file() and (repo / "pyproject.toml").is_file():
        return repo / "data"
    return platformdirs.user_cache_path("pix2pix-course", appauthor=False) / "data"
