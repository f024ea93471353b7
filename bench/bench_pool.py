"""Episode set-up benchmark for stateful servers, in one run on one machine:

P5  time from entering ``hub.episode()`` to an MCP session ready for the first tool call,
    warm pool against cold start (pool size 0)                     goal <= 50 ms pooled

The server is the bundled music server over stdio (stateful: every episode gets its own process).
Rows:
- cold: pool size 0, every episode starts its server process;
- pooled: pool size 2, the pool refilled between episodes (episodes longer than a server start,
  the usual case with a model in the loop);
- pooled, back to back: no pause between episodes, so an episode may wait for a start under way.

"ready" is the ``async with`` entering; "first call" adds one ``get_recently_played`` round trip.

Usage: python bench/bench_pool.py [--episodes N]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from pathlib import Path

import anyio

from sandbox.hub import ToolHub, load_config

ROOT = Path(__file__).resolve().parents[1]


async def measure(pool_size: int, episodes: int, refill: bool) -> tuple[list[float], list[float]]:
    """Milliseconds to a ready session, and to the first call's answer, for each episode."""
    config = load_config(ROOT / "servers" / "mcp.json")
    ready: list[float] = []
    first_call: list[float] = []
    async with ToolHub({"music": config["music"]}, pool_size=pool_size) as hub:
        for _ in range(episodes):
            if refill:
                await hub.warm()
            started = time.perf_counter()
            async with hub.episode(["music"]) as episode:
                ready.append((time.perf_counter() - started) * 1000)
                result = await episode.call("get_recently_played", {"limit": 1})
                first_call.append((time.perf_counter() - started) * 1000)
                if result.is_error:
                    raise SystemExit(f"the music server failed: {result.text}")
    return ready, first_call


def _row(label: str, ready: list[float], first_call: list[float]) -> str:
    return (
        f"{label:<24} ready median {statistics.median(ready):7.1f} ms  max {max(ready):7.1f} ms   "
        f"first call median {statistics.median(first_call):7.1f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=10)
    args = parser.parse_args()

    cold = anyio.run(measure, 0, args.episodes, False)
    pooled = anyio.run(measure, 2, args.episodes, True)
    burst = anyio.run(measure, 2, args.episodes, False)

    print(f"machine: {platform.processor() or platform.machine()}, python {platform.python_version()}")
    print(f"episodes per row: {args.episodes}, server: music over stdio")
    print(_row("cold (pool size 0)", *cold))
    print(_row("pooled (size 2)", *pooled))
    print(_row("pooled, back to back", *burst))
    cold_ms, pooled_ms = statistics.median(cold[0]), statistics.median(pooled[0])
    verdict = "meets" if pooled_ms <= 50 else "misses"
    print(
        f"P5 pooled {pooled_ms:.1f} ms vs cold {cold_ms:.1f} ms: {cold_ms / pooled_ms:.0f}x faster "
        f"({verdict} the 50 ms goal)"
    )


if __name__ == "__main__":
    main()
