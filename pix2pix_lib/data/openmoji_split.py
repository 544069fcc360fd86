"""The OpenMoji train/val split: by emoji *family*, never by file.

Skin tones, man/woman/person and hair variants of one emoji share (nearly) the same line art, so
putting one in train and another in val would leak the answer. `openmoji_group_key` strips those
modifiers, files whose line groups are byte-identical are joined too, and `split_by_group` sends
whole families to one side with a seeded hash (stable across runs and file counts).
"""

from __future__ import annotations

import hashlib


SKIN_TONES = {"1F3FB", "1F3FC", "1F3FD", "1F3FE", "1F3FF"}


VARIATION_SELECTORS = {"FE0F", "FE0E"}


ZWJ = "200D"


# ZWJ components that only change gender, hair or facing direction of the same figure.
DROPPED_COMPONENTS = {"2640", "2642", "26A7", "1F9B0", "1F9B1", "1F9B2", "1F9B3", "27A1"}


# Single code points that are gendered or aged versions of one figure -> one canonical figure.
SAME_FIGURE = {
    "1F468": "1F9D1", "1F469": "1F9D1",                      # man, woman -> person
    "1F466": "1F9D2", "1F467": "1F9D2",                      # boy, girl -> child
    "1F474": "1F9D3", "1F475": "1F9D3",                      # old man, old woman -> older person
    "1F478": "1FAC5", "1F934": "1FAC5",                      # princess, prince -> person with crown
    "1F483": "1F57A",                                        # woman dancing -> man dancing
    "1F936": "1F385",                                        # Mrs Claus -> Santa
    "1F46B": "1F9D1+1F91D+1F9D1", "1F46C": "1F9D1+1F91D+1F9D1",  # couples holding hands
    "1F46D": "1F9D1+1F91D+1F9D1",
    "1F48F": "1F9D1+2764+1F48B+1F9D1",                       # kiss
    "1F491": "1F9D1+2764+1F9D1",                             # couple with heart
    "1F46A": "family",
}


def openmoji_group_key(name: str) -> str:
    """Key shared by all variants of one emoji (file stem like '1F469-1F3FD-200D-1F9B0').

    Strips skin tones and variation selectors, drops ZWJ components that only set gender, hair or
    direction, and maps man/woman/person (boy/girl/child, ...) to one figure. Families of any
    make-up share the key 'family'.

    >>> openmoji_group_key("1F469-1F3FD-200D-1F9B0") == openmoji_group_key("1F468-200D-1F9B0")
    True
    """
    codes = [c for c in name.upper().split("-") if c not in SKIN_TONES and c not in VARIATION_SELECTORS]
    parts: list[str] = []
    current: list[str] = []
    for code in codes + [ZWJ]:
        if code == ZWJ:
            if current:
                parts.append("-".join(current))
            current = []
        else:
            current.append(code)
    parts = [SAME_FIGURE.get(p, p) for p in parts if p not in DROPPED_COMPONENTS] or ["-".join(codes)]
    key = "+".join(parts)
    figures = key.split("+")
    if len(figures) >= 2 and all(f in ("1F9D1", "1F9D2") for f in figures):
        return "family"  # man+woman+girl, woman+boy, ...: the same drawing of a group of people
    return key


def _unit_hash(text: str) -> float:
    """A stable number in [0, 1) from a string (Python's hash() changes between runs)."""
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big") / 2**64


def split_by_group(names: list[str], line_hashes: dict[str, str] | None = None, *,
                   val_fraction: float = 0.1, seed: int = 0) -> dict[str, str]:
    """Assign each file stem to "train" or "val" so that no emoji family sits in both.

    Families: same `openmoji_group_key`, or byte-identical line art (union-find over both).
    A family goes to val when a seeded hash of its smallest key falls below val_fraction, so the
    split does not depend on the order or number of files. With two or more families and
    0 < val_fraction < 1, each split gets at least one family.
    """
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        while parent.setdefault(x, x) != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    def union(x: str, y: str) -> None:
        rx, ry = find(x), find(y)
        if rx != ry:
            parent[max(rx, ry)] = min(rx, ry)  # the smaller key represents the family

    keys = {name: "key:" + openmoji_group_key(name) for name in names}
    for name in names:
        find(keys[name])
        if line_hashes and name in line_hashes:
            union(keys[name], "line:" + line_hashes[name])
    # Representative = smallest *key* in the family (line hashes only link, never name it).
    family_of = {name: find(keys[name]) for name in names}
    label = {}
    for name in names:
        label.setdefault(family_of[name], []).append(keys[name])
    families = {root: min(members) for root, members in label.items()}
    score = {root: _unit_hash(f"{seed}:{rep}") for root, rep in families.items()}
    val = {root for root, s in score.items() if s < val_fraction}
    if len(families) >= 2 and 0 < val_fraction < 1:
        ordered = sorted(score, key=score.get)
        if not val:
            val = {ordered[0]}
        if len(val) == len(families):
            val.discard(ordered[-1])
    return {name: ("val" if family_of[name] in val else "train") for name in names}
