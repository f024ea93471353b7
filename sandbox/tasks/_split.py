"""Train and held-out splits: a fixed partition of every value domain by a stable hash.

Each parameter value a task is built from (a place, a song title, a number) belongs to one split
forever: :func:`split_of` hashes the domain and the value (SHA-256, so neither Python's hash seed
nor the order of the data moves it) and puts about :data:`HELDOUT_SHARE` of the values in
``heldout``. A family draws its train tasks from train values only and its held-out tasks from
held-out values only, so the two never share a value, whatever ``n`` and seed; and a value added to
a server's data does not move any other value.
"""

from __future__ import annotations

import hashlib
from typing import Literal

Split = Literal["train", "heldout"]
SPLITS: tuple[Split, ...] = ("train", "heldout")
HELDOUT_SHARE = 0.3

# Value domains. One domain is one partition, shared by every family: a held-out place is held out
# in the weather, files and direct families alike.
PLACE = "place"
TITLE = "title"
NUMBER = "number"


def split_of(domain: str, value: str | int) -> Split:
    """The split ``value`` of ``domain`` belongs to (compared casefolded, surrounding spaces ignored)."""
    key = f"{domain}\x00{str(value).strip().casefold()}".encode()
    share = int.from_bytes(hashlib.sha256(key).digest()[:8], "big") / 2**64
    return "heldout" if share < HELDOUT_SHARE else "train"


def value_tag(domain: str, value: str | int) -> str:
    """The tag a task carries for each value it uses, e.g. ``place=Denver`` (what tests and filters read)."""
    return f"{domain}={value}"
