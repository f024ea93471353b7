"""State checks: whether a :class:`~sandbox.records.StateCheck` holds of recorded server state.

The state is what the episode read through MCP resources the model never sees (``Trace.final_state``
at the end, ``Step.state`` after each call): server -> resource URI -> JSON document. A check's
``path`` is dotted; at an object the longest run of the remaining parts that is one of its keys is
taken (so ``files.notes.txt`` reaches the key ``notes.txt`` of ``files``), at a list a part is an
index. ``op``:

- ``equals``: the value there equals ``value`` as JSON (``1`` and ``true`` differ);
- ``contains``: ``value`` is a substring of the text there, an item of the list, or a key of the
  object;
- ``exists`` / ``absent``: the path leads somewhere (a null value counts as there) or not.

A resource that was not read (missing, or recorded as null) makes every check on it fail, ``absent``
included: what was not seen cannot be vouched for.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sandbox.records import ServerState, StateCheck

SHOWN_CHARS = 60


@dataclass(frozen=True)
class StateVerdict:
    """Whether a check holds, and in words what was found."""

    holds: bool
    reason: str


_MISSING = object()


def describe_check(check: StateCheck) -> str:
    """The check in words: ``music://state now_playing equals 'lib-001'``."""
    where = f"{check.resource} {check.path}".rstrip() if check.path else check.resource
    if check.op in ("exists", "absent"):
        return f"{where} {check.op}"
    return f"{where} {check.op} {_shown(check.value)}"


def check_state(check: StateCheck, state: ServerState | None) -> StateVerdict:
    """Whether ``check`` holds of ``state`` (see module doc)."""
    document = (state or {}).get(check.server, {}).get(check.resource)
    if document is None:
        return StateVerdict(False, f"{check.server} {check.resource} was not read")
    found = resolve(document, check.path)
    there = found is not _MISSING
    if check.op == "exists":
        return StateVerdict(there, "it is there" if there else "nothing is there")
    if check.op == "absent":
        return StateVerdict(not there, f"found {_shown(found)}" if there else "nothing is there")
    if not there:
        return StateVerdict(False, "nothing is there")
    if check.op == "equals":
        holds = _canonical(found) == _canonical(check.value)
    else:
        holds = _contains(found, check.value)
    return StateVerdict(holds, f"found {_shown(found)}")


def resolve(document: Any, path: str) -> Any:
    """The value at dotted ``path`` in ``document`` (module doc), or a private marker when none."""
    parts = path.split(".") if path else []
    value = document
    while parts:
        if isinstance(value, dict):
            for size in range(len(parts), 0, -1):
                key = ".".join(parts[:size])
                if key in value:
                    value, parts = value[key], parts[size:]
                    break
            else:
                return _MISSING
        elif isinstance(value, list) and parts[0].lstrip("-").isdigit():
            index = int(parts[0])
            if not -len(value) <= index < len(value):
                return _MISSING
            value, parts = value[index], parts[1:]
        else:
            return _MISSING
    return value


def _contains(found: Any, value: Any) -> bool:
    if isinstance(found, str):
        return isinstance(value, str) and value in found
    if isinstance(found, list):
        wanted = _canonical(value)
        return any(_canonical(item) == wanted for item in found)
    if isinstance(found, dict):
        return isinstance(value, str) and value in found
    return False


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


def _shown(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False) if value is not _MISSING else "nothing"
    return text if len(text) <= SHOWN_CHARS else text[:SHOWN_CHARS] + "..."
