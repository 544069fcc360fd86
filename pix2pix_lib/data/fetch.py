"""Downloading one file over HTTP without ever touching a file this command did not write.

A download goes to `<dest>.part`, a file made here (never over an existing file, never through a
link), and is renamed to `<dest>` when complete. A marker beside it, `.<dest>.download.json`, holds
the file's identity (device, inode), size and SHA-256: it proves later that this library wrote it.
Only a proven file is resumed (HTTP Range), truncated or deleted; anything else at those names - a
browser's unfinished download, a link, a fifo - is refused in one line and left as it is. Ctrl-C
keeps a started .part (marked) for the next run. The datasets (download.py) and the reference
models (pretrained.py) use it.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import http.client
import json
import os
import re
import stat
import urllib.error
import urllib.request
from pathlib import Path
from typing import BinaryIO

from tqdm.auto import tqdm

from ..files import RefusedError, shown, write_json_atomic

_MB = 1 << 20
CHUNK = 1 << 16
MARK_EVERY = 64 * _MB  # a killed download is provably ours up to its last mark
# Every file here is opened without following a link, and without blocking on a fifo.
_NO_LINK = getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)


# --- what this library downloaded: a marker beside each download ---------------------------------
def _marker(dest: Path) -> Path:
    return dest.with_name(f".{dest.name}.download.json")


def open_plain(path: Path, flags: int, what: str) -> int | None:
    """A descriptor of the plain file at `path`, None when nothing is there; a link, folder or
    special file there is refused in one line (never followed, never touched)."""
    try:
        fd = os.open(path, flags | _NO_LINK, 0o666)
    except FileNotFoundError:
        return None
    except OSError as err:
        if err.errno not in (errno.ELOOP, errno.EMLINK, errno.EISDIR, errno.ENXIO):  # not a link, folder, fifo
            raise RefusedError(f"{shown(path)}: cannot be opened ({err.strerror}); it is left as it is") from None
        fd = None
    if fd is not None and stat.S_ISREG(os.fstat(fd).st_mode):
        return fd
    if fd is not None:
        os.close(fd)
    raise RefusedError(f"{shown(path)}: is a link or special file, not {what}; it is left as it is (links are "
                       "never followed here): move it away and run the same command again")


def _read_marker(dest: Path) -> dict:
    """`dest`'s marker, or {} when there is none this library wrote."""
    with contextlib.suppress(RefusedError, OSError, ValueError):
        fd = open_plain(_marker(dest), os.O_RDONLY, "a marker")
        if fd is not None:
            with os.fdopen(fd, "rb") as f:
                data = json.loads(f.read(4096))
            if isinstance(data, dict) and data.get("made_by") == "pix2pix_lib":
                return data
    return {}


def _mark(dest: Path, fd: int, digest) -> None:
    """Record that the open file `fd` (all of it, hashed in `digest`) is the download of `dest`."""
    marker, st = _marker(dest), os.fstat(fd)
    if os.path.lexists(marker) and not _read_marker(dest):
        raise RefusedError(f"{shown(marker)}: is not a marker this library wrote; it is left as it is: move it away "
                           "and run the same command again")
    write_json_atomic(marker, {"made_by": "pix2pix_lib", "file": dest.name, "dev": st.st_dev,
                                      "ino": st.st_ino, "size": st.st_size, "sha256": digest.hexdigest()})


def _feed(fd: int, digest, limit: int | None = None) -> None:
    """Hash the next `limit` bytes of `fd` (None: all the rest) into `digest`."""
    while limit is None or limit > 0:
        chunk = os.read(fd, CHUNK if limit is None else min(CHUNK, limit))
        if not chunk:
            return
        digest.update(chunk)
        limit = None if limit is None else limit - len(chunk)


def _proven(fd: int, dest: Path):
    """The SHA-256 of the open file when `dest`'s marker proves this library wrote it, else None.

    The proof: the same file (device, inode) starting with the same bytes (size and hash at the last
    mark; a killed download may have written more after it).
    """
    marker, st = _read_marker(dest), os.fstat(fd)
    size = marker.get("size")
    if [marker.get("dev"), marker.get("ino")] != [st.st_dev, st.st_ino] or type(size) is not int \
            or not 0 <= size <= st.st_size:
        return None
    digest = hashlib.sha256()
    os.lseek(fd, 0, os.SEEK_SET)
    _feed(fd, digest, size)
    if digest.hexdigest() != marker.get("sha256"):
        return None
    _feed(fd, digest)
    return digest


def discard_download(path: Path, dest: Path, fd: int) -> None:
    """Delete `path` (`dest` or its .part) while it is still the open file `fd`, proven ours, and the marker."""
    st = os.fstat(fd)
    with contextlib.suppress(FileNotFoundError):
        now = os.lstat(path)
        if (now.st_dev, now.st_ino) == (st.st_dev, st.st_ino):
            os.unlink(path)
    if _read_marker(dest):
        _marker(dest).unlink(missing_ok=True)


def open_download(url: str, dest: Path, *, progress: bool = True, max_bytes: int | None = None) -> tuple[BinaryIO, bool]:
    """`dest` open for reading - downloaded from `url` when nothing is there - and whether this
    library downloaded it (now, or in an earlier run: its marker proves it). Hold a lock beside `dest`."""
    fd = open_plain(dest, os.O_RDONLY, "a download")
    if fd is None:
        return _download(url, dest, progress=progress, max_bytes=max_bytes), True
    return os.fdopen(fd, "rb"), _proven(fd, dest) is not None


# --- the download ----------------------------------------------------------------------------------
def _open_part(part: Path, dest: Path):
    """(descriptor, SHA-256 so far) of the .part to write: a new one, or one the marker proves ours."""
    fd = open_plain(part, os.O_RDWR, "a download of this command")
    if fd is None:
        try:
            fd = os.open(part, os.O_RDWR | os.O_CREAT | os.O_EXCL | _NO_LINK, 0o666)
        except FileExistsError:  # someone else made one after we looked
            fd = -1
        else:
            try:
                _mark(dest, fd, hashlib.sha256())
            except BaseException:  # Ctrl-C between making and marking: what we made goes
                discard_download(part, dest, fd)
                os.close(fd)
                raise
            return fd, hashlib.sha256()
    digest = _proven(fd, dest) if fd != -1 else None
    if digest is None:
        if fd != -1:
            os.close(fd)
        raise RefusedError(f"{shown(part)}: was not downloaded by this command (a browser's unfinished download?); "
                           "it is left as it is: move it away and run the same command again")
    return fd, digest


def _request(url: str, have: int, timeout: float):
    """The response from byte `have` on; None when the server knows no such prefix (HTTP 416)."""
    request = urllib.request.Request(url, headers={"User-Agent": "pix2pix-course"})
    if have:
        request.add_header("Range", f"bytes={have}-")
    try:
        return urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as err:
        if err.code == 416 and have:
            return None
        raise RuntimeError(f"{shown(url)}: download failed (HTTP {err.code} {shown(err.reason)})") from err
    except urllib.error.URLError as err:
        raise RuntimeError(f"{shown(url)}: cannot connect ({shown(err.reason)}); check the network or --base-url") from err


def _span(response, have: int) -> tuple[int, int | None]:
    """(first byte, whole size or None) of a response: 200 is the whole file, 206 says its range."""
    length = response.headers.get("Content-Length", "").strip()
    length = int(length) if re.fullmatch(r"[0-9]{1,18}", length) else None
    if response.status != 206:
        return 0, length
    found = re.fullmatch(r"bytes ([0-9]{1,18})-[0-9]{1,18}/([0-9]{1,18}|\*)",
                         response.headers.get("Content-Range", "").strip())
    if not found:
        return -1, None  # no range we can trust: start again
    start = int(found[1])
    return start, int(found[2]) if found[2] != "*" else (start + length if length is not None else None)


def _write_all(fd: int, chunk: bytes, digest) -> None:
    view = memoryview(chunk)
    while view:  # unbuffered: what the hash covers is exactly what is on disk
        written = os.write(fd, view)
        digest.update(view[:written])
        view = view[written:]


def _download(url: str, dest: Path, *, progress: bool, timeout: float = 60.0, max_bytes: int | None = None) -> BinaryIO:
    """Download `url` to `dest` (through `dest.part`, resumed when ours) and return it open for reading.

    More than `max_bytes` (announced, or received) stops the download with an error: a wrong or
    hostile server cannot fill the disk.
    """
    part = dest.with_name(dest.name + ".part")
    fd, digest = _open_part(part, dest)
    keep = True
    # What the hash covers, kept a whole chunk at a time: a Ctrl-C between a write and its hash update
    # must not leave a marker whose hash disagrees with the file (the next run would refuse the .part).
    hashed = (os.fstat(fd).st_size, digest.copy())
    try:
        have = os.fstat(fd).st_size
        response = _request(url, have, timeout)
        start, total = _span(response, have) if response is not None else (-1, None)
        if start != have:  # no such prefix there (416, another start) or the whole file (200): from zero
            if start != 0:
                if response is not None:
                    response.close()
                response = _request(url, 0, timeout)
                start, total = _span(response, 0)
            os.ftruncate(fd, 0)
            os.lseek(fd, 0, os.SEEK_SET)
            have, digest = 0, hashlib.sha256()
            hashed = (0, digest.copy())
        with response, tqdm(total=total, initial=have, unit="B", unit_scale=True, unit_divisor=1024,
                            desc=dest.name, disable=not progress) as bar:
            if max_bytes is not None and total is not None and total > max_bytes:
                raise RuntimeError(f"{shown(url)}: the server announces {total / _MB:.0f} MB, more than the "
                                   f"{max_bytes / _MB:.0f} MB this download is published at; refusing to download it")
            while True:
                try:
                    chunk = response.read(CHUNK)
                except (OSError, ValueError, http.client.HTTPException) as err:  # reset, IncompleteRead, ...
                    raise RuntimeError(f"{shown(url)}: download interrupted after {have} bytes ({shown(err)}); "
                                       "run the same command again to resume") from err
                if not chunk:
                    break
                if max_bytes is not None and have + len(chunk) > max_bytes:
                    keep = False
                    raise RuntimeError(f"{shown(url)}: the response goes on past {max_bytes / _MB:.0f} MB, more than "
                                       "this download is published at; stopped and deleted the partial file")
                _write_all(fd, chunk, digest)
                have += len(chunk)
                hashed = (have, digest.copy())
                bar.update(len(chunk))
                if have // MARK_EVERY != (have - len(chunk)) // MARK_EVERY:
                    _mark(dest, fd, digest)
        if total is not None and have != total:
            raise RuntimeError(f"{shown(url)}: incomplete download, got {have} of {total} bytes; the partial file "
                               f"{shown(part)} is kept, run the same command again to resume")
        _mark(dest, fd, digest)
        if os.path.lexists(dest):
            raise RefusedError(f"{shown(dest)}: appeared while this command downloaded it; it is left as it is, "
                               f"and the download stays at {shown(part)}")
        os.replace(part, dest)
    except BaseException:  # Ctrl-C included: a started .part is kept (marked) for the next run
        if keep and os.fstat(fd).st_size:
            with contextlib.suppress(OSError):
                digest = hashed[1].copy()
                os.lseek(fd, hashed[0], os.SEEK_SET)
                _feed(fd, digest)  # what was written after the last whole chunk was hashed (at most a chunk)
                _mark(dest, fd, digest)
        else:
            discard_download(part, dest, fd)
        os.close(fd)
        raise
    return os.fdopen(fd, "rb")
