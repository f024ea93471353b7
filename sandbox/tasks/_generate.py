"""Making tasks: one family (or all, round-robin) through the real servers, into a task file.

:func:`generate_tasks` opens a :class:`~sandbox.hub.ToolHub` on the servers the family reads,
reads their data (:func:`~sandbox.tasks._world.read_world`), and asks the family for ``n`` tasks of
the split. The family draws with ``random.Random(f"{family}|{seed}|{split}")``, so the same
``(family, n, seed, split)`` gives the same tasks, in the same order, on every machine. ``all``
takes task ``i`` from family ``i mod 5`` (in :data:`FAMILIES` order), so every family gets
``n // 5`` tasks or one more.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import anyio

from sandbox.hub import ServerConfig, ToolHub, load_config
from sandbox.records import ConfigError, Task, write_atomic
from sandbox.tasks import _calculator, _direct, _files, _music, _weather
from sandbox.tasks._split import SPLITS, Split
from sandbox.tasks._world import CALCULATOR, MUSIC, WEATHER, TaskGenerationError, World, read_world

ALL = "all"
# The bundled servers' config, found beside the sandbox package (a checkout or an install alike).
BUNDLED_SERVERS = Path(__file__).resolve().parents[2] / "servers" / "mcp.json"

Maker = Callable[[World, Split, int, random.Random], Awaitable[list[Task]]]


@dataclass(frozen=True)
class Family:
    """A task generator: its name, the servers it reads data from, and how it makes tasks."""

    name: str
    reads: tuple[str, ...]
    make: Maker


_FAMILIES: dict[str, Family] = {
    family.name: family
    for family in (
        Family("weather", (WEATHER,), _weather.make),
        Family("music", (MUSIC,), _music.make),
        Family("calculator", (CALCULATOR,), _calculator.make),
        Family("files", (WEATHER, MUSIC), _files.make),
        Family("direct", (WEATHER, MUSIC, CALCULATOR), _direct.make),
    )
}
FAMILIES: tuple[str, ...] = tuple(_FAMILIES)


def check_request(family: str, n: int, split: str) -> list[str]:
    """The families a request names; a bad family, ``n`` or split is one clear error."""
    if family != ALL and family not in _FAMILIES:
        raise TaskGenerationError(f"unknown task family {family!r}; known: {', '.join(FAMILIES)} or {ALL}")
    if n < 1:
        raise TaskGenerationError(f"--n must be at least 1 (got {n})")
    if split not in SPLITS:
        raise TaskGenerationError(f"unknown split {split!r}; use train or heldout")
    return list(FAMILIES) if family == ALL else [family]


def _counts(names: list[str], n: int) -> dict[str, int]:
    return {name: n // len(names) + (index < n % len(names)) for index, name in enumerate(names)}


def _server_configs(
    servers: str | Path | Mapping[str, ServerConfig] | None, needed: list[str]
) -> dict[str, ServerConfig]:
    source = BUNDLED_SERVERS if servers is None else servers
    config = load_config(source) if isinstance(source, str | Path) else dict(source)
    missing = [name for name in needed if name not in config]
    if missing:
        where = source if isinstance(source, str | Path) else "the server config"
        raise ConfigError(
            f"{where} configures no {', '.join(missing)} server, which these tasks are made from"
        )
    return {name: config[name] for name in needed}


class TaskMaker:
    """An open hub on the servers some families read, and their data, for many requests.

    ``async with TaskMaker(servers, families) as maker: await maker.make("weather", 20, seed, "train")``
    starts the servers and reads their data once; each :meth:`make` then only draws (and asks the
    calculator). ``families``: the families it will be asked for (default: all).
    """

    def __init__(
        self,
        servers: str | Path | Mapping[str, ServerConfig] | None = None,
        families: Sequence[str] = FAMILIES,
    ) -> None:
        unknown = [name for name in families if name not in _FAMILIES]
        if unknown:
            check_request(unknown[0], 1, "train")
        self.families = list(families)
        needed = sorted({server for name in self.families for server in _FAMILIES[name].reads})
        self._configs = _server_configs(servers, needed)
        self._hub: ToolHub | None = None
        self._world: World | None = None

    async def __aenter__(self) -> TaskMaker:
        self._hub = ToolHub(self._configs)
        await self._hub.__aenter__()
        try:
            self._world = await read_world(self._hub, sorted(self._configs))
        except BaseException:
            await self.__aexit__(None, None, None)
            raise
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        hub, self._hub, self._world = self._hub, None, None
        if hub is not None:
            await hub.__aexit__(None, None, None)

    async def make(self, family: str, n: int, seed: int = 0, split: str = "train") -> list[Task]:
        """``n`` tasks of ``family`` (or ``all``) for ``split`` (module doc)."""
        names = check_request(family, n, split)
        if self._world is None:
            raise RuntimeError("enter the TaskMaker with `async with` before making tasks")
        outside = [name for name in names if name not in self.families]
        if outside:
            raise TaskGenerationError(f"this TaskMaker was opened for {self.families}, not {outside}")
        chosen: Split = "train" if split == "train" else "heldout"
        counts = {name: count for name, count in _counts(names, n).items() if count}
        made = {
            name: await _FAMILIES[name].make(
                self._world, chosen, count, random.Random(f"{name}|{seed}|{chosen}")
            )
            for name, count in counts.items()
        }
        ordered: list[Task] = []
        for index in range(max(counts.values())):
            ordered += [made[name][index] for name in names if index < len(made.get(name, []))]
        return ordered


async def generate_tasks(
    family: str,
    n: int,
    seed: int = 0,
    split: str = "train",
    *,
    servers: str | Path | Mapping[str, ServerConfig] | None = None,
) -> list[Task]:
    """``n`` tasks of ``family`` (or ``all``) for ``split``, made from the servers' data (module doc).

    ``servers``: an ``mcpServers`` config file or mapping (default: the bundled ``servers/mcp.json``);
    it must configure the servers the families read. Opens (and closes) a :class:`TaskMaker`.
    """
    names = check_request(family, n, split)
    async with TaskMaker(servers, names) as maker:
        return await maker.make(family, n, seed, split)


def make_tasks(
    family: str,
    n: int,
    seed: int = 0,
    split: str = "train",
    *,
    servers: str | Path | Mapping[str, ServerConfig] | None = None,
) -> list[Task]:
    """:func:`generate_tasks` from synchronous code (it runs its own event loop)."""
    return anyio.run(lambda: generate_tasks(family, n, seed, split, servers=servers))


def check_output(out: Path, *, overwrite: bool = False) -> None:
    """Refuse to replace a task file that holds something, unless ``overwrite``."""
    if not overwrite and out.exists() and out.stat().st_size > 0:
        raise ConfigError(f"{out} already exists; pass --overwrite to replace it, or pick another -o")


def write_tasks(tasks: list[Task], out: Path, *, overwrite: bool = False) -> None:
    """Write ``tasks`` as a JSONL task file (defaults left out, as the seed file writes them)."""
    check_output(out, overwrite=overwrite)
    out.parent.mkdir(parents=True, exist_ok=True)
    text = "".join(task.model_dump_json(exclude_defaults=True) + "\n" for task in tasks)
    write_atomic(out, text)
