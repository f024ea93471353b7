"""How long ``sandbox view`` takes on a large run, and how long the page takes to open.

    python bench/bench_view.py [--traces runs/seed.jsonl] [--n 10000]

Builds N synthetic traces from real trace records (each a copy of a real trace with its own id,
sample number and reward values), writes them as JSONL, then measures:

- generation: ``write_report`` on that file (read, validate, render, write), wall seconds;
- load: headless Chromium opening the report from disk and taking a screenshot (load, script, layout
  and paint), wall seconds, against an empty page opened the same way (the browser's own start-up);
  the same for a trace's page (``#t<N-1>``), which parses that trace's JSON on demand;
- the page's own figure: milliseconds from navigation start to the end of its script
  (``data-ready-ms``, read from a DOM dump), which covers parsing the whole file and drawing the overview.
  Dumping a 60 MB DOM takes the browser several seconds more; that is the dump, not the page.
"""

from __future__ import annotations

import argparse
import random
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from sandbox.records import Reward, Trace, read_traces, write_trace
from sandbox.view import write_report

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def synthetic(base: list[Trace], n: int, seed: int = 0) -> list[Trace]:
    """N traces cycling over the real ones; rewards jittered so the grid and histograms vary."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        real = base[i % len(base)]
        rewards = {
            name: Reward(
                **{**r.model_dump(), "value": None if r.value is None else r.value + rng.uniform(-1, 1)}
            )
            for name, r in real.rewards.items()
        }
        sample = i // len(base)
        out.append(
            real.model_copy(update={"id": f"{real.task_id}:{sample}", "sample": sample, "rewards": rewards})
        )
    return out


def open_page(url: str, profile: Path, *how: str) -> tuple[float, str]:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        raise SystemExit("chromium is not installed (apt-get install chromium)")
    start = time.perf_counter()
    done = subprocess.run(
        [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *how, url],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    return time.perf_counter() - start, done.stdout


def ready_ms(dom: str) -> str:
    found = re.search(r'data-ready-ms="(\d+)"', dom)
    return found.group(1) if found else "?"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--traces", type=Path, default=Path("runs/seed.jsonl"))
    parser.add_argument("--n", type=int, default=10_000)
    args = parser.parse_args()
    base = read_traces(args.traces)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        source = root / "big.jsonl"
        with source.open("w", encoding="utf-8") as handle:
            for trace in synthetic(base, args.n):
                write_trace(handle, trace)
        start = time.perf_counter()
        report = write_report(source, root / "big.html")
        generation = time.perf_counter() - start
        empty = root / "empty.html"
        empty.write_text("<!DOCTYPE html><title>empty</title>", encoding="utf-8")
        size = source.stat().st_size
        shot = ("--window-size=1280,1400", f"--screenshot={root / 'shot.png'}")
        open_page(empty.as_uri(), root / "profile", *shot)  # the first start sets up the profile
        baseline, _ = open_page(empty.as_uri(), root / "profile", *shot)
        overview, _ = open_page(report.path.as_uri(), root / "profile", *shot)
        page, _ = open_page(report.path.as_uri() + f"#t{args.n - 1}", root / "profile", *shot)
        _, dom = open_page(report.path.as_uri(), root / "profile", "--dump-dom")
    print(f"{args.n} traces ({size / 1e6:.0f} MB of JSONL) from {args.traces}")
    print(f"generation: {generation:.1f} s, report {report.bytes / 1e6:.1f} MB")
    print(f"screenshot, empty page: {baseline:.2f} s")
    print(f"screenshot, overview:   {overview:.2f} s")
    print(f"screenshot, trace page: {page:.2f} s")
    print(f"overview script done {ready_ms(dom)} ms after navigation start")


if __name__ == "__main__":
    main()
