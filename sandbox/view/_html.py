"""``sandbox view``: one self-contained HTML file for reading traces in a browser.

The file needs no server and no network: open it from disk. It holds

- an overview, computed here in Python: a tasks x samples grid coloured by total reward, totals and
  means per reward with a histogram each, the tool-call validity rate, the stop reasons, and one row per
  task with links to its best and worst sample and to the two side by side (what a DPO pair would hold);
- filters (task, total reward range, stop reason, failed tool calls only) over a list of traces;
- one page per trace: the prompt, each step (thought, call and arguments, result with errors marked,
  the step's reward values), the final answer against the expected one, every reward with its
  components and reason.

Scale: every trace's detail sits in its own ``<script type="application/json">`` block and is parsed
only when its page is opened; the page's script renders with DOM calls and ``textContent`` only, so a
trace's text is never parsed as HTML. Every ``<``, ``>`` and ``&`` inside those blocks is written as a
JSON ``\\u`` escape, so no text can close the block, and everything this module writes into HTML goes
through :func:`html.escape`. A Content-Security-Policy allows only the page's own script (by hash) and
no network at all, as a second wall.

Definitions (also in the README):

- *total reward* of a trace: the sum of its rewards' non-None values (None when none scored), or the
  value of the one reward named by ``reward=``.
- *tool-using step*: action ``tool_call`` or ``broken_call``. Its call is *valid* when it parsed, names a
  tool the trace lists, its result is not ``unknown_tool``, and its arguments validate against that
  tool's input schema. *Validity rate* = valid / tool-using steps.
- *failed tool call*: a tool-using step that is not valid, or whose result is an error (any
  ``error_kind``, a tool's own error included).
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rewards import call_validity, uses_tool
from sandbox.records import SandboxError, Step, Trace, TraceFileError, iter_traces, total_reward

HISTOGRAM_BINS = 20
COLOUR_STEPS = 10  # the grid's colour scale: classes c0 (lowest total) .. c10 (highest)


# --------------------------------------------------------------------------- reading


@dataclass
class Loaded:
    """Traces read from a file or a run directory, and the files skipped because they hold no traces."""

    traces: list[Trace]
    files: list[Path]
    skipped: list[str] = field(default_factory=list)


def load_traces(source: Path) -> Loaded:
    """Read a trace JSONL file, or every ``*.jsonl`` file of a directory that holds traces.

    In a directory, a file whose first record is not a trace (a loss file, say) is skipped; a trace
    file with a bad record further down is an error, as everywhere else.
    """
    if source.is_dir():
        loaded = Loaded([], [])
        for path in sorted(source.glob("*.jsonl")):
            traces = _read_if_traces(path)
            if traces is None:
                loaded.skipped.append(f"{path.name}: not a trace file")
            elif traces:
                loaded.traces.extend(traces)
                loaded.files.append(path)
        if not loaded.traces:
            raise SandboxError(f"{source}: no trace files (*.jsonl holding traces) in this directory")
        return loaded
    traces = list(iter_traces(source))
    if not traces:
        raise SandboxError(f"{source}: no traces in file")
    return Loaded(traces, [source])


def _read_if_traces(path: Path) -> list[Trace] | None:
    traces: list[Trace] = []
    try:
        for trace in iter_traces(path):
            traces.append(trace)
    except TraceFileError:
        if traces:
            raise
        return None
    return traces


# --------------------------------------------------------------------------- what the overview counts


def failed_call(step: Step, problem: str | None) -> bool:
    """A tool-using step that is not valid (``problem`` says why), or whose result is an error."""
    return uses_tool(step) and (problem is not None or step.is_error)


def call_problem(trace: Trace, step: Step) -> str | None:
    """Why a tool-using step's call is not valid (the tool-syntax reward's rule), None when it is or
    when its validity cannot be told (an unusable schema)."""
    return call_validity(trace, step).problem


@dataclass(frozen=True)
class RewardStats:
    """One reward across the traces: how many scored, their sum, mean, range and histogram."""

    name: str
    scored: int
    unscored: int
    total: float
    low: float
    high: float
    counts: tuple[int, ...]

    @property
    def mean(self) -> float:
        return self.total / self.scored if self.scored else math.nan


def reward_stats(name: str, values: Sequence[float | None], bins: int = HISTOGRAM_BINS) -> RewardStats:
    scored = [v for v in values if v is not None]
    if not scored:
        return RewardStats(name, 0, len(values), 0.0, math.nan, math.nan, ())
    low, high = min(scored), max(scored)
    counts = [0] * bins
    for value in scored:
        counts[_bin(value, low, high, bins)] += 1
    return RewardStats(
        name, len(scored), len(values) - len(scored), math.fsum(scored), low, high, tuple(counts)
    )


def _bin(value: float, low: float, high: float, bins: int) -> int:
    if high <= low:
        return 0
    return min(bins - 1, int((value - low) / (high - low) * bins))


# --------------------------------------------------------------------------- the report


@dataclass(frozen=True)
class Report:
    """What :func:`write_report` wrote."""

    path: Path
    traces: int
    tasks: int
    bytes: int
    skipped: tuple[str, ...]


def default_output(source: Path) -> Path:
    return source / "report.html" if source.is_dir() else source.with_suffix(".html")


def write_report(source: Path, out: Path | None = None, *, reward: str | None = None) -> Report:
    """Read traces from ``source`` (a file or a run directory) and write the HTML report."""
    loaded = load_traces(source)
    out = out or default_output(source)
    page = render_report(loaded.traces, reward=reward, title=f"traces: {source.name}")
    try:
        out.write_text(page, encoding="utf-8")
    except OSError as exc:
        raise SandboxError(f"cannot write {out}: {exc.strerror or exc}") from exc
    tasks = len({t.task_id for t in loaded.traces})
    return Report(out, len(loaded.traces), tasks, len(page.encode()), tuple(loaded.skipped))


def render_report(traces: Sequence[Trace], *, reward: str | None = None, title: str = "traces") -> str:
    """The whole page as a string."""
    names = sorted({name for trace in traces for name in trace.rewards})
    if reward is not None and reward not in names:
        raise SandboxError(f"--reward {reward!r}: no trace has it (rewards: {', '.join(names) or 'none'})")
    totals = [total_reward(trace, reward) for trace in traces]
    tasks = list(dict.fromkeys(trace.task_id for trace in traces))
    task_index = {task: n for n, task in enumerate(tasks)}
    stops = sorted({trace.stop_reason for trace in traces})
    rows: list[list[Any]] = []
    details: list[dict[str, Any]] = []
    valid_calls = tool_steps = 0
    for i, trace in enumerate(traces):
        problems = [call_problem(trace, step) if uses_tool(step) else None for step in trace.steps]
        tool_steps += sum(uses_tool(step) for step in trace.steps)
        valid_calls += sum(
            uses_tool(step) and p is None for step, p in zip(trace.steps, problems, strict=True)
        )
        failed = any(failed_call(step, p) for step, p in zip(trace.steps, problems, strict=True))
        rows.append(
            [task_index[trace.task_id], trace.sample, totals[i], stops.index(trace.stop_reason), failed]
        )
        details.append(_detail(trace, totals[i], problems))
    by_task: dict[int, list[int]] = {}
    for i, row in enumerate(rows):
        by_task.setdefault(int(row[0]), []).append(i)
    pairs = {t: _best_and_worst(indices, totals) for t, indices in by_task.items()}
    index = {"tasks": tasks, "stops": stops, "rows": rows, "pairs": pairs, "reward": reward or "sum"}
    parts = [
        _head(title),
        f"<h1>{_e(title)}</h1>",
        _summary(traces, names, totals, reward, valid_calls, tool_steps),
        _filters(tasks, stops),
        _grid(traces, totals, by_task, tasks),
        _task_table(tasks, by_task, totals, pairs),
        '<section id="list"><h2>Traces <span id="count"></span></h2><ol id="rows"></ol>'
        '<button id="more" hidden>show more</button></section>',
        '</main><main id="page" hidden></main>',
        _json_block("index", index),
        *(_json_block(f"d{i}", detail) for i, detail in enumerate(details)),
        f"<script>{SCRIPT}</script></body></html>",
    ]
    return "\n".join(parts)


def _best_and_worst(indices: list[int], totals: Sequence[float | None]) -> list[int]:
    """The task's best and worst trace by total reward (unscored traces rank below every score)."""

    def key(i: int) -> float:
        value = totals[i]
        return -math.inf if value is None else value

    ranked = sorted(indices, key=key)
    return [ranked[-1], ranked[0]]


def _detail(trace: Trace, total: float | None, problems: Sequence[str | None]) -> dict[str, Any]:
    """What a trace's page shows, nothing more (no messages, no tool schemas)."""
    steps = []
    for n, step in enumerate(trace.steps):
        item: dict[str, Any] = {"index": step.index, "action": step.action, "thought": step.thought}
        if step.call is not None:
            item["call"] = {"name": step.call.name, "arguments": json.dumps(step.call.arguments, indent=1)}
        if step.parse_error:
            item["parse_error"] = step.parse_error
            item["raw"] = step.raw_text
        if problems[n] is not None and step.action != "broken_call":
            item["invalid"] = problems[n]
        if step.result is not None:
            item["result"] = {
                "text": step.result.text,
                "error": step.result.error_kind or step.result.is_error,
            }
        if step.answer is not None:
            item["answer"] = step.answer
        per_step = {
            name: r.per_step[n]
            for name, r in trace.rewards.items()
            if r.per_step is not None and n < len(r.per_step) and r.per_step[n] is not None
        }
        if per_step:
            item["rewards"] = per_step
        item["meta"] = (
            f"{step.usage.completion_tokens} tokens, {step.model_seconds + step.tool_seconds:.2f} s"
        )
        steps.append(item)
    return {
        "id": trace.id,
        "task": trace.task_id,
        "sample": trace.sample,
        "model": f"{trace.model.name}, {trace.mode} mode",
        "system": trace.task.system,
        "prompt": trace.task.prompt,
        "steps": steps,
        "final": trace.final_answer,
        "expected": trace.task.expected_answer,
        "match": trace.task.answer_match,
        "stop": trace.stop_reason,
        "error": trace.error,
        "total": total,
        "rewards": [
            {
                "name": r.name,
                "version": r.version,
                "value": r.value,
                "components": r.components,
                "reason": r.reason,
            }
            for r in trace.rewards.values()
        ],
    }


# --------------------------------------------------------------------------- HTML pieces (all escaped)


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _num(value: float | None) -> str:
    if value is None or math.isnan(value):
        return "–"
    return f"{value + 0.0:+.2f}" if round(value, 2) else "+0.00"  # never "-0.00"


def _json_block(element_id: str, value: object) -> str:
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    # Inside a script element only "</script" (and "<!--") would end the data; no "<" can appear at all.
    text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return f'<script type="application/json" id="{element_id}">{text}</script>'


def _head(title: str) -> str:
    digest = base64.b64encode(hashlib.sha256(SCRIPT.encode()).digest()).decode()
    policy = f"default-src 'none'; script-src 'sha256-{digest}'; style-src 'unsafe-inline'; img-src data:"
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{policy}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<title>{_e(title)}</title><style>{STYLE}</style></head><body><main id="overview">'
    )


def _summary(
    traces: Sequence[Trace],
    names: Sequence[str],
    totals: Sequence[float | None],
    reward: str | None,
    valid_calls: int,
    tool_steps: int,
) -> str:
    stats = [reward_stats(name, [_value(t, name) for t in traces]) for name in names]
    label = f"total ({reward})" if reward else "total (sum)"
    stats.append(reward_stats(label, totals))
    rows = "".join(
        f"<tr><th>{_e(s.name)}</th><td>{s.scored}</td><td>{s.unscored}</td><td>{_num(s.total)}</td>"
        f"<td>{_num(s.mean)}</td><td>{_num(s.low)}</td><td>{_num(s.high)}</td><td>{_histogram(s)}</td></tr>"
        for s in stats
    )
    rate = f"{valid_calls / tool_steps:.1%}" if tool_steps else "–"
    stops: dict[str, int] = {}
    for trace in traces:
        stops[trace.stop_reason] = stops.get(trace.stop_reason, 0) + 1
    stop_rows = "".join(f"<tr><th>{_e(s)}</th><td>{n}</td></tr>" for s, n in sorted(stops.items()))
    tasks = len({t.task_id for t in traces})
    return (
        f'<p class="facts">{len(traces)} traces · {tasks} tasks · tool-call validity '
        f'<b id="validity">{rate}</b> ({valid_calls} of {tool_steps} tool-using steps valid)</p>'
        '<div class="cols"><table class="stats"><tr><th>reward</th><th>scored</th><th>unscored</th>'
        f"<th>sum</th><th>mean</th><th>min</th><th>max</th><th>distribution</th></tr>{rows}</table>"
        '<table class="stats" id="stops"><tr><th>stop reason</th><th>traces</th></tr>'
        f"{stop_rows}</table></div>"
    )


def _value(trace: Trace, name: str) -> float | None:
    reward = trace.rewards.get(name)
    return None if reward is None else reward.value


def _histogram(stats: RewardStats, width: int = 160, height: int = 28) -> str:
    if not stats.counts:
        return ""
    bar = width / len(stats.counts)
    peak = max(stats.counts)
    step = (stats.high - stats.low) / len(stats.counts)
    rects = []
    for n, count in enumerate(stats.counts):
        if count:
            h = max(1.0, count / peak * height)
            start = stats.low + n * step
            tip = (
                f"{count} in [{start:+.2f}, {start + step:+.2f})" if step else f"{count} at {stats.low:+.2f}"
            )
            rects.append(
                f'<rect x="{n * bar:.1f}" y="{height - h:.1f}" width="{bar - 1:.1f}" height="{h:.1f}">'
                f"<title>{_e(tip)}</title></rect>"
            )
    return f'<svg class="hist" width="{width}" height="{height}">{"".join(rects)}</svg>'


def _filters(tasks: Sequence[str], stops: Sequence[str]) -> str:
    task_options = "".join(f'<option value="{n}">{_e(task)}</option>' for n, task in enumerate(tasks))
    stop_options = "".join(f'<option value="{n}">{_e(stop)}</option>' for n, stop in enumerate(stops))
    return (
        '<form id="filters" class="filters"><label>task <select id="f-task"><option value="">all</option>'
        f"{task_options}</select></label>"
        '<label>total ≥ <input id="f-min" type="number" step="any" size="6"></label>'
        '<label>≤ <input id="f-max" type="number" step="any" size="6"></label>'
        f'<label>stop <select id="f-stop"><option value="">all</option>{stop_options}</select></label>'
        '<label><input id="f-failed" type="checkbox"> failed tool calls only</label></form>'
    )


def _colour_class(value: float | None, low: float, high: float) -> str:
    if value is None:
        return "cn"
    return f"c{round(_fraction(value, low, high) * COLOUR_STEPS)}"


def _fraction(value: float, low: float, high: float) -> float:
    return 0.5 if high <= low else (value - low) / (high - low)


def _grid(
    traces: Sequence[Trace],
    totals: Sequence[float | None],
    by_task: dict[int, list[int]],
    tasks: Sequence[str],
) -> str:
    """Rows are tasks; a row's cells are its traces in sample order (file order among equal samples)."""
    scored = [v for v in totals if v is not None]
    low, high = (min(scored), max(scored)) if scored else (0.0, 0.0)
    rows = []
    for t, indices in by_task.items():
        cells = "".join(
            f'<a class="cell {_colour_class(totals[i], low, high)}" href="#t{i}" data-i="{i}" '
            f'title="{_e(tasks[t])} · sample {traces[i].sample} · total {_num(totals[i])}"></a>'
            for i in sorted(indices, key=lambda i: traces[i].sample)
        )
        rows.append(f'<div class="row"><span class="task">{_e(tasks[t])}</span><span>{cells}</span></div>')
    legend = "".join(f'<span class="cell c{n}"></span>' for n in range(COLOUR_STEPS + 1))
    return (
        '<section><h2>Tasks × samples</h2><p class="legend">total reward '
        f'{_num(low)} {legend} {_num(high)} · <span class="cell cn"></span> unscored</p>'
        f'<div id="grid">{"".join(rows)}</div></section>'
    )


def _task_table(
    tasks: Sequence[str],
    by_task: dict[int, list[int]],
    totals: Sequence[float | None],
    pairs: dict[int, list[int]],
) -> str:
    rows = []
    for t, indices in by_task.items():
        scored = [totals[i] for i in indices if totals[i] is not None]
        mean = math.fsum(v for v in scored if v is not None) / len(scored) if scored else None
        best, worst = pairs[t]
        pair_link = f'<a href="#c{t}">best vs worst</a>' if len(indices) > 1 else "one trace"
        rows.append(
            f"<tr><th>{_e(tasks[t])}</th><td>{len(indices)}</td><td>{_num(mean)}</td>"
            f'<td><a href="#t{best}">{_num(totals[best])}</a></td>'
            f'<td><a href="#t{worst}">{_num(totals[worst])}</a></td>'
            f"<td>{pair_link}</td></tr>"
        )
    return (
        '<section><h2>Tasks</h2><table class="stats" id="tasks"><tr><th>task</th><th>traces</th><th>mean</th>'
        f"<th>best</th><th>worst</th><th></th></tr>{''.join(rows)}</table></section>"
    )


STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:0;color:#222;background:#fafafa}
main{padding:12px 20px}h1{font-size:20px;margin:4px 0}h2{font-size:16px;margin:18px 0 6px}
table.stats{border-collapse:collapse;margin:4px 16px 4px 0;background:#fff}
.stats th,.stats td{border:1px solid #ddd;padding:2px 8px;text-align:right;vertical-align:middle}
.stats th:first-child{text-align:left}.cols{display:flex;flex-wrap:wrap;align-items:flex-start}
.hist rect{fill:#4a7fb5}.facts{margin:4px 0}.filters input[type=number]{width:6em}
.filters{display:flex;flex-wrap:wrap;gap:14px;padding:8px;background:#eef2f6;border-radius:4px;margin:10px 0}
.row{display:flex;align-items:flex-start;gap:8px;margin:1px 0}
.task{flex:0 0 240px;overflow:hidden;text-overflow:ellipsis;white-space:nowrap;font-size:12px}
.cell{display:inline-block;width:11px;height:11px;margin:0 1px 1px 0;vertical-align:middle}
.cell.dim{opacity:.12}.cn{background:#bbb}
.c0{background:#b2182b}.c1{background:#cb3a3a}.c2{background:#d6604d}.c3{background:#e48a6f}
.c4{background:#f1b393}.c5{background:#e9e4cf}.c6{background:#b6dba0}.c7{background:#86c27a}
.c8{background:#5aa85a}.c9{background:#2f8a44}.c10{background:#14672f}
#rows{padding-left:2.5em}#rows li{margin:1px 0}#rows .bad{color:#b2182b}
.trace{background:#fff;border:1px solid #ddd;border-radius:4px;padding:8px 12px;margin:8px 0;min-width:0}
.pair{display:grid;grid-template-columns:1fr 1fr;gap:12px}
pre{max-height:24em;overflow:auto;white-space:pre-wrap;word-break:break-word;margin:2px 0;padding:4px 6px;
  background:#f4f4f4;border-radius:3px}
.step{border-left:3px solid #9bb;padding:2px 8px;margin:8px 0}.step.failed{border-left-color:#b2182b}
.label{font-size:12px;color:#666;margin-top:4px}.thought{color:#555;font-style:italic}
.err{background:#fde8e8;color:#8a1020}.err-label{color:#b2182b;font-weight:bold}
.chip{display:inline-block;font-size:12px;background:#eef2f6;border-radius:3px;padding:0 5px;margin-left:6px}
.ok{background:#e6f4e6}.rewards :is(td,th):nth-child(n+4){text-align:left}
"""

SCRIPT = r"""
"use strict";
const $ = (id) => document.getElementById(id);
const INDEX = JSON.parse($("index").textContent);
const PAGE = 400;  // list rows drawn at a time
let shown = PAGE, matching = [];

function el(tag, cls, text) {
  const node = document.createElement(tag);
  if (cls) node.className = cls;
  if (text !== undefined && text !== null) node.textContent = String(text);
  return node;
}
function add(parent, ...children) { children.forEach((c) => c && parent.appendChild(c)); return parent; }
function num(v) {
  if (v === null || v === undefined) return "–";
  const text = v.toFixed(2);
  return text === "-0.00" ? "+0.00" : (v >= 0 ? "+" : "") + text;
}
function link(href, text) { const a = el("a", "", text); a.href = href; return a; }
function detail(i) { return JSON.parse($("d" + i).textContent); }

function filters() {
  const value = (id) => $(id).value;
  return {
    task: value("f-task"), stop: value("f-stop"), failed: $("f-failed").checked,
    min: value("f-min") === "" ? null : Number(value("f-min")),
    max: value("f-max") === "" ? null : Number(value("f-max")),
  };
}
function keep(row, f) {
  const [task, , total, stop, failed] = row;
  if (f.task !== "" && task !== Number(f.task)) return false;
  if (f.stop !== "" && stop !== Number(f.stop)) return false;
  if (f.failed && !failed) return false;
  if (f.min !== null && (total === null || total < f.min)) return false;
  if (f.max !== null && (total === null || total > f.max)) return false;
  return true;
}
function applyFilters() {
  const f = filters(), keepSet = new Uint8Array(INDEX.rows.length);
  matching = [];
  INDEX.rows.forEach((row, i) => { if (keep(row, f)) { matching.push(i); keepSet[i] = 1; } });
  for (const cell of document.querySelectorAll("#grid .cell")) {
    cell.classList.toggle("dim", !keepSet[Number(cell.dataset.i)]);
  }
  shown = PAGE;
  drawList();
}
function drawList() {
  const list = $("rows");
  list.replaceChildren();
  for (const i of matching.slice(0, shown)) {
    const [task, sample, total, stop, failed] = INDEX.rows[i];
    const item = el("li", failed ? "bad" : "");
    add(item, link("#t" + i, INDEX.tasks[task]),
      document.createTextNode(` · sample ${sample} · total ${num(total)} · ${INDEX.stops[stop]}`
        + (failed ? " · failed tool call" : "")));
    list.appendChild(item);
  }
  $("count").textContent = `(${matching.length} of ${INDEX.rows.length} match)`;
  $("more").hidden = matching.length <= shown;
}

function block(label, text, cls) {
  const box = el("div");
  add(box, el("div", "label", label), el("pre", cls || "", text));
  return box;
}
function renderStep(step) {
  const failed = step.action === "broken_call" || step.invalid || (step.result && step.result.error);
  const box = el("section", "step" + (failed ? " failed" : ""));
  const head = el("div", "", `step ${step.index} · ${step.action} · ${step.meta}`);
  for (const [name, value] of Object.entries(step.rewards || {})) {
    head.appendChild(el("span", "chip", `${name} ${num(value)}`));
  }
  box.appendChild(head);
  if (step.thought) box.appendChild(block("thought", step.thought, "thought"));
  if (step.call) box.appendChild(block("call " + step.call.name, step.call.arguments));
  if (step.invalid) box.appendChild(el("div", "err-label", "invalid call: " + step.invalid));
  if (step.parse_error) {
    box.appendChild(el("div", "err-label", "broken call: " + step.parse_error));
    box.appendChild(block("raw text", step.raw, "err"));
  }
  if (step.result) {
    const error = step.result.error;
    const label = error ? "result — error" + (error === true ? "" : ` (${error})`) : "result";
    box.appendChild(block(label, step.result.text, error ? "err" : ""));
  }
  if (step.answer !== undefined) box.appendChild(block("answer", step.answer, "ok"));
  return box;
}
function renderTrace(i, caption) {
  const d = detail(i), box = el("article", "trace");
  add(box, el("h2", "", (caption ? caption + ": " : "") + d.task),
    el("div", "label", `sample ${d.sample} · ${d.id} · ${d.model} · stop ${d.stop} · total ${num(d.total)}`));
  if (d.system) box.appendChild(block("system", d.system));
  box.appendChild(block("prompt", d.prompt));
  d.steps.forEach((step) => box.appendChild(renderStep(step)));
  const expected = Array.isArray(d.expected) ? d.expected.join(" | ") : d.expected;
  box.appendChild(d.final === null ? block("final answer", "(none)") : block("final answer", d.final, "ok"));
  box.appendChild(block(`expected (${d.match})`, expected === null ? "(none)" : expected));
  if (d.error) box.appendChild(block("error", d.error, "err"));
  const table = el("table", "stats rewards");
  const headings = ["reward", "version", "value", "components", "reason"];
  add(table, add(el("tr"), ...headings.map((h) => el("th", "", h))));
  for (const r of d.rewards) {
    const parts = Object.entries(r.components).map(([k, v]) => `${k}=${v}`).join(", ");
    add(table, add(el("tr"), el("th", "", r.name), el("td", "", r.version), el("td", "", num(r.value)),
      el("td", "", parts), el("td", "", r.reason)));
  }
  add(box, el("div", "label", "rewards"), table);
  return box;
}
function route() {
  const hash = location.hash, page = $("page"), m = /^#([tc])(\d+)$/.exec(hash);
  page.replaceChildren();
  if (!m) { page.hidden = true; $("overview").hidden = false; return; }
  const nav = add(el("p"), link("#", "← overview"));
  page.appendChild(nav);
  const n = Number(m[2]);
  if (m[1] === "t" && n < INDEX.rows.length) {
    const task = INDEX.rows[n][0];
    add(nav, document.createTextNode(" · "), link("#c" + task, "best vs worst of this task"));
    page.appendChild(renderTrace(n));
  } else if (m[1] === "c" && INDEX.pairs[n]) {
    const [best, worst] = INDEX.pairs[n];
    page.appendChild(el("h1", "", "best vs worst: " + INDEX.tasks[n]));
    if (best === worst) {
      add(page, el("p", "", "This task has one trace only."), renderTrace(best));
    } else {
      page.appendChild(add(el("div", "pair"), renderTrace(best, "best"), renderTrace(worst, "worst")));
    }
  } else {
    page.appendChild(el("p", "err", "no such trace"));
  }
  $("overview").hidden = true;
  page.hidden = false;
  window.scrollTo(0, 0);
}

$("filters").addEventListener("input", applyFilters);
$("filters").addEventListener("submit", (event) => event.preventDefault());
$("more").addEventListener("click", () => { shown += PAGE; drawList(); });
window.addEventListener("hashchange", route);
applyFilters();
route();
document.documentElement.dataset.readyMs = performance.now().toFixed(0);
"""
