"""Improve benchmark (not a test): one round of ``sandbox improve`` on the embedded SmolLM2-135M.

Makes train and held-out tasks of every bundled family (``sandbox.tasks``, held-out values unseen in
training), runs one round -- n samples per train task at temperature 0.8, kept by outcome, the
oracle's demonstrations where none was kept, LoRA SFT, greedy evaluation of base and tuned model on
the held-out tasks with the same seeds -- and prints, for base and tuned: the held-out outcome,
tool_syntax, bfcl and process means, how often no-tool questions were answered with no call, the
held-out loss (next-token loss of the held-out demonstrations), the training tokens/s and the wall
time of every stage. Everything stays in --out (report.json, rewards.png, the viewer pages).

Usage: python bench/bench_improve.py [--train 24] [--heldout 10] [--n 1] [--epochs 2] [--lr 1e-3]
                                     [--out /tmp/bench-improve] [--resume]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # this checkout's sandbox, not an installed one
SHOWN = ("outcome", "tool_syntax", "bfcl", "process")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--families", default="all", help="comma-separated families, or all (round-robin)")
    parser.add_argument("--train", type=int, default=24, help="train tasks per family (all: in total)")
    parser.add_argument("--heldout", type=int, default=10, help="held-out tasks per family (all: in total)")
    parser.add_argument("--n", type=int, default=1, help="samples per train task")
    parser.add_argument("--epochs", type=float, default=2.0)
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--max-steps", type=int, default=4)
    parser.add_argument("--max-tokens", type=int, default=384)
    parser.add_argument("--token-budget", type=int, default=1024)
    parser.add_argument("--parallel", type=int, default=4)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--out", type=Path, default=Path("/tmp/bench-improve"))
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--direct-share", type=float, default=None, help="cap on no-tool trained traces")
    parser.add_argument("--start-timeout", type=float, default=60.0, help="server start seconds")
    args = parser.parse_args()

    from sandbox.improve import ImproveOptions, improve
    from sandbox.tasks import make_tasks, write_tasks

    servers = ROOT / "servers" / "mcp.json"
    tasks_dir = args.out.with_name(args.out.name + "-tasks")
    train_file, heldout_file = tasks_dir / "train.jsonl", tasks_dir / "heldout.jsonl"
    if not args.resume:
        families = args.families.split(",")
        for file, count, seed, split in (
            (train_file, args.train, 1, "train"),
            (heldout_file, args.heldout, 2, "heldout"),
        ):
            tasks = [
                task
                for family in families
                for task in make_tasks(family, count, seed, split, servers=servers)
            ]
            write_tasks(tasks, file, overwrite=True)
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, load {os.getloadavg()}", flush=True)
    started = time.perf_counter()
    result = improve(
        ImproveOptions(
            tasks=train_file,
            heldout=heldout_file,
            out=args.out,
            servers=servers,
            rounds=args.rounds,
            n=args.n,
            max_steps=args.max_steps,
            max_tokens=args.max_tokens,
            token_budget=args.token_budget,
            parallel=args.parallel,
            threads=args.threads,
            epochs=args.epochs,
            steps=args.steps,
            learning_rate=args.lr,
            direct_share=args.direct_share,
            start_timeout=args.start_timeout,
            resume=args.resume,
            overwrite=not args.resume,
        ),
        progress=lambda line: print(f"[{time.perf_counter() - started:7.0f} s] {line}", flush=True),
    )
    report = result.report
    base = report["base"]
    print(
        f"\n{report['train_tasks']} train / {report['heldout_tasks']} held-out tasks; "
        f"load now {os.getloadavg()}"
    )
    print(
        f"{'held-out':<24}{'base':>8}"
        + "".join(f"{'round ' + str(r['round']):>10}" for r in report["rounds"])
    )
    for name in SHOWN:
        row = "".join(f"{r['heldout']['rewards'].get(name, float('nan')):>10.3f}" for r in report["rounds"])
        print(f"{name:<24}{base['heldout']['rewards'].get(name, float('nan')):>8.3f}{row}")
    direct = base["heldout"].get("direct_answers")
    row = "".join(f"{r['heldout'].get('direct_answers') or 0.0:>10.3f}" for r in report["rounds"])
    print(f"{'no-tool answered direct':<24}{direct if direct is not None else float('nan'):>8.3f}{row}")
    for family, got in (base["heldout"].get("families") or {}).items():
        row = "".join(
            f"{r['heldout'].get('families', {}).get(family, {}).get('outcome', float('nan')):>10.3f}"
            for r in report["rounds"]
        )
        print(f"{'outcome ' + family + ' (' + str(got['traces']) + ')':<24}{got['outcome']:>8.3f}{row}")
    row = "".join(f"{r['heldout_loss']:>10.4f}" for r in report["rounds"])
    print(f"{'held-out loss':<24}{base['heldout_loss']:>8.4f}{row}")
    for r in report["rounds"]:
        t = r["train"]
        print(
            f"round {r['round']}: kept {r['selection']['kept']} samples, {r['selection']['demos']} demos, "
            f"{r['rows']} rows; {t['steps']} steps, {t['tokens']} tokens "
            f"at {t['tokens_per_second']:.0f} tokens/s, "
            f"loss {t['first_loss']:.3f} -> {t['last_loss']:.3f}, peak {t['peak_rss_mb']} MB"
        )
        print("  seconds: " + ", ".join(f"{k} {v:.0f}" for k, v in r["seconds"].items()))
    print("base seconds: " + ", ".join(f"{k} {v:.0f}" for k, v in base["seconds"].items()))
    print(f"wall: {time.perf_counter() - started:.0f} s this invocation, {report['seconds']:.0f} s of stages")
    print(f"files: {result.report_path}, {result.plot}")
    print(
        json.dumps(
            {"base": base["heldout"]["rewards"], "tuned": [r["heldout"]["rewards"] for r in report["rounds"]]}
        )
    )


if __name__ == "__main__":
    main()
