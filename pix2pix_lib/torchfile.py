"""Any torch.save file read as plain data, without trusting it: the archive first, then the record.

`load_plain` opens the file once and reads it whole; `check_archive` inspects the zip (stored
entries only, no more bytes than the file holds, torch's own entry names) before
`torch.load(..., weights_only=True)` unpickles those same bytes. A file that holds pickled Python
objects is refused, never unpickled: loading it could run code (PyTorch's own message suggests
retrying with weights_only=False - we never do). `check_record` then says, field by field, where a
well-formed file holds the wrong kind of thing. Every error is one line naming the file (files.shown).
"""

from __future__ import annotations

import io
import os
import re
import zipfile
from pathlib import Path
from typing import NamedTuple

import torch

from .files import shown

# ----------------------------------------------------------------------------- reading any .pt
# A torch.save file is a zip of stored (uncompressed) entries in one folder: the pickle, one entry
# per tensor storage, a few small markers. Only these names are read; torch writes no others.
TORCH_ENTRY = re.compile(r"[^/]+/(data\.pkl|data/\d+|version|byteorder|\.format_version|\.storage_alignment"
                         r"|\.data/version|\.data/serialization_id)")
LEGACY_STARTS = (b"\x80\x02\x8a\nl\xfc\x9cF\xf9 j\xa8P\x19",)  # torch.save before 1.6 (a pickled magic number)


def load_plain(path: str | Path, what: str = "weights file", *, mmap: bool = False):
    """`torch.load` of plain tensors, lists, dicts and numbers from an inspected archive; errors name `path`.

    The file is opened once: the bytes inspected (`check_archive`) are the bytes unpickled, so it
    cannot be swapped in between. `mmap=True` (for reading a few fields of a large file) maps the
    same open file through /proc/self/fd instead of reading it, where there is one (Linux).
    FileNotFoundError: no file. ValueError: not a torch file (truncated, corrupt, another format,
    the pre-1.6 format), an archive that could inflate or hide entries, or a file that holds
    Python objects (refused because unpickling them could run code).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{shown(path)}: no such {what}")
    with open(path, "rb") as file:
        mapped = f"/proc/self/fd/{file.fileno()}"
        if mmap and os.path.exists(mapped):
            source = mapped  # torch maps this same open file, not whatever `path` names by then
            check_archive(file, os.fstat(file.fileno()).st_size, path, what)
        else:  # a copy in memory: what was inspected cannot change before torch reads it
            data, mmap = file.read(), False
            source = io.BytesIO(data)
            check_archive(source, len(data), path, what)
        try:
            return torch.load(source, map_location="cpu", weights_only=True, mmap=mmap)
        except Exception as err:  # noqa: BLE001 - torch raises UnpicklingError, RuntimeError, EOFError, ...
            raise ValueError(_load_error(path, what, err)) from None


def check_archive(file, size: int, path: str | Path, what: str = "weights file") -> None:
    """Raise ValueError unless `file` (open, binary) is a torch zip archive that unpacks to what it holds.

    Refused before torch reads it: not a zip (or torch's pre-1.6 format: re-save it), any
    compressed entry (a 0.5 MB file could inflate to 512 MB in every loader), declared sizes
    beyond the file, duplicated or unexpected entries.
    """
    head = file.read(16)
    file.seek(0)
    if head.startswith(LEGACY_STARTS):
        raise ValueError(f"{shown(path)}: a {what} in PyTorch's format from before 1.6, which is not read here; "
                         "re-save it: torch.save(torch.load(f, weights_only=True), f)")
    try:
        if not head.startswith(b"PK\x03\x04"):  # where torch looks: a zip found further in is not what it reads
            raise zipfile.BadZipFile("not a zip archive")
        entries = zipfile.ZipFile(file).infolist()
        file.seek(0)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as err:
        raise ValueError(f"{shown(path)}: not a readable {what} (corrupt, truncated or another format: "
                         f"{str(err)[:80]})") from None
    names = [entry.filename for entry in entries]
    problem = next((f"its entry {shown(entry.filename)} is compressed ({entry.file_size / 2**20:.1f} MB "
                    f"from {entry.compress_size / 2**20:.1f} MB)" for entry in entries
                    if entry.compress_type != zipfile.ZIP_STORED or entry.file_size != entry.compress_size), None)
    if problem is None and sum(entry.file_size for entry in entries) > size:
        problem = f"its entries claim {sum(e.file_size for e in entries) / 2**20:.1f} MB from {size / 2**20:.1f} MB"
    if problem is None and (len(set(names)) != len(names) or len({n.split('/')[0] for n in names}) != 1):
        problem = "its entries are duplicated or in several folders"
    if problem is None:
        odd = [n for n in names if not TORCH_ENTRY.fullmatch(n)]
        problem = f"it holds entries torch does not write ({shown(odd[0])})" if odd else None
    if problem is None and not any(n.endswith("/data.pkl") for n in names):
        problem = "it has no data.pkl"
    if problem:
        raise ValueError(f"{shown(path)}: not a plain {what}: {problem}; refused before reading it")


def _load_error(path: Path, what: str, err: Exception) -> str:
    text = str(err)
    if "GLOBAL" in text:  # "Trying to load unsupported GLOBAL posix.system": a pickled object
        return (f"{shown(path)}: not a plain-tensor {what}: it holds Python objects, and loading those could run "
                "code, so it is refused (only tensors, numbers and strings are read)")
    first = next((line for line in text.splitlines() if line.strip()), type(err).__name__)
    if first.startswith("Weights only load failed"):
        first = "not a PyTorch file"
    return f"{shown(path)}: not a readable {what} (corrupt, truncated or another format: {first[:120]})"


class Within(NamedTuple):
    """A spec: a number of `kinds` from `low` to `high` (NaN never is): an epoch of -5 or 1e20 is no epoch."""
    kinds: tuple
    low: float
    high: float


def record_problems(value, spec, name: str = "the file") -> list[str]:
    """Where `value` does not hold what `spec` says, one phrase per problem naming the field.

    A spec is a type or a tuple of types (bool is never taken for a number), a `Within` range, a dict of fields (a
    name ending in "?" may be missing; "*": every other entry, whose names must be strings), or a
    list of one spec (a list of such items). Only what a spec names is looked at.
    """
    if isinstance(spec, list):
        if not isinstance(value, list):
            return [f"'{name}' is a {type(value).__name__}, expected a list"]
        return [p for i, item in enumerate(value) for p in record_problems(item, spec[0], f"{name}[{i}]")]
    if isinstance(spec, dict):
        if not isinstance(value, dict):
            return [f"'{name}' is a {type(value).__name__}, expected a dict"]
        problems, prefix = [], "" if name == "the file" else f"{name}."
        for field, sub in spec.items():
            key = field.rstrip("?")
            if key == "*":
                continue
            if key in value:
                problems += record_problems(value[key], sub, prefix + key)
            elif not field.endswith("?"):
                problems.append(f"no field '{prefix + key}'")
        for key, item in value.items():
            if "*" in spec and not isinstance(key, str):
                problems.append(f"'{name}' has a key that is a {type(key).__name__} ({repr(key)[:30]})")
            elif "*" in spec and key not in spec and f"{key}?" not in spec:
                problems += record_problems(item, spec["*"], prefix + key)
        return problems
    if isinstance(spec, Within):
        problems = record_problems(value, spec.kinds, name)
        if problems or spec.low <= value <= spec.high:
            return problems
        return [f"'{name}' is {value!r}, outside {spec.low}..{spec.high}"]
    kinds = spec if isinstance(spec, tuple) else (spec,)
    if isinstance(value, kinds) and (bool in kinds or not isinstance(value, bool)):
        return []
    return [f"'{name}' is a {type(value).__name__}, expected {' or '.join(k.__name__ for k in kinds)}"]


def check_record(value, spec, path: str | Path, what: str) -> None:
    """Raise ValueError naming the file and (the first three of) the fields that do not hold what `spec` says."""
    problems = record_problems(value, spec)
    if problems:
        more = f" and {len(problems) - 3} more" if len(problems) > 3 else ""
        listed = "; ".join(shown(problem)[:160] for problem in problems[:3])  # names from the file: one line
        raise ValueError(f"{shown(path)}: not a usable {what}: {listed}{more} "
                         "(a damaged file, or one from another program)")
