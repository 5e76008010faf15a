"""The gate's findings as a pull or merge request comment (Markdown for GitHub and GitLab): the verdict, the
breached SLOs, the worst steps with their p95 before and after and the interval of the change, and a link to
the HTML report.

It reads the gate's results as their `to_dict()` gives them, so it follows the gate whatever decides inside it.
Every name that comes from a spec or an imported file is shown as inline code: no step label can mention a
user, open an HTML tag or break the table.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from typing import Any

MARKER = "<!-- perfhouse gate -->"  # lets a CI job find (and replace) its earlier comment
WORST = 5  # steps listed per run; the rest are counted
_RANK = {"WORSE": 0, "INCONCLUSIVE": 1, "BETTER": 3, "SAME": 2}
_ICON = {0: "✅", 3: "❌", 8: "❌", 9: "⚠️"}


def ci_report_url(environ: Mapping[str, str] | None = None) -> str:
    """Where a CI system keeps the job's artifacts (the HTML report among them), when it says: GitHub Actions'
    run page, GitLab's job page, Jenkins' build page; else ''."""
    env = os.environ if environ is None else environ
    if env.get("GITHUB_RUN_ID") and env.get("GITHUB_REPOSITORY"):
        server = env.get("GITHUB_SERVER_URL") or "https://github.com"
        return f"{server}/{env['GITHUB_REPOSITORY']}/actions/runs/{env['GITHUB_RUN_ID']}"
    return env.get("CI_JOB_URL") or env.get("BUILD_URL") or ""


def comment_markdown(results: Sequence[Mapping[str, Any]], report_url: str = "") -> str:
    """The comment for the gate's results (their `to_dict()`), worst first within each run."""
    status = max((int(r.get("exit_status", 0)) for r in results), default=0)
    worst = next((r for r in results if int(r.get("exit_status", 0)) == status), None)
    headline = str(worst.get("outcome", "")) if worst else "nothing judged"
    lines = [MARKER, f"### {_ICON.get(status, '❌')} perfhouse gate: {_text(headline)} (exit {status})", ""]
    for r in results:
        lines += _run_lines(r)
    if report_url:
        lines.append(f"[HTML report]({_link(report_url)})")
    return "\n".join(lines).rstrip() + "\n"


def _run_lines(r: Mapping[str, Any]) -> list[str]:
    run = r.get("run") or {}
    what = " / ".join(_code(str(run[k])) for k in ("spec_name", "profile", "environment") if run.get(k))
    repeats = [str(x.get("run_id", "")) for x in r.get("repeats") or []]
    runs = (f" set of {len(repeats)} runs {', '.join(_code(x) for x in repeats)}" if len(repeats) > 1
            else f" run {_code(str(run.get('run_id', '')))}")
    lines = [f"**{_text(str(r.get('outcome', '')))}** · {what + ' · ' if what else ''}{_code(str(run.get('tool', '')))}"
             f"{runs} · verdict {_text(str(r.get('verdict', '')))}", ""]
    slos = r.get("slos") or []
    failed = [v for v in slos if not v.get("passed", True)]
    if failed:
        lines += [f"- SLO breached: {_code(str(v.get('slo', '')))} (observed {_observed(v)})" for v in failed]
    elif slos:
        lines.append(f"- every SLO holds ({len(slos)})")
    comparison = r.get("comparison")
    if comparison:
        lines += _comparison_lines(comparison, r.get("baseline") or {})
    lines += [f"- {_text(str(n))}" for n in r.get("notes") or []]
    lines.append("")
    return lines


def _comparison_lines(c: Mapping[str, Any], baseline: Mapping[str, Any]) -> list[str]:
    base = (c.get("a") or {}).get("run_id") or baseline.get("run_id") or ""
    how = c.get("baseline") or baseline.get("how") or ""
    rows = [*(c.get("steps") or []), *([c["overall"]] if c.get("overall") else [])]
    rows.sort(key=lambda s: (_RANK.get(str(s.get("verdict")), 4), -_finite(s.get("p95_shift"), -math.inf)))
    shown = rows[:WORST]
    lines = ["", f"Against baseline {_code(str(base))}{f' ({_text(str(how))})' if how else ''}:", "",
             "| step | p95 ms before → after | change (99 % interval) | verdict |", "|---|---:|---:|---|"]
    for s in shown:
        a, b = s.get("a") or {}, s.get("b") or {}
        interval = s.get("p95_shift_interval") or []
        change = _pct(s.get("p95_shift"))
        if len(interval) == 2:
            change += f" ({_pct(interval[0])} to {_pct(interval[1])})"
        verdict = str(s.get("verdict", ""))
        lines.append(f"| {_code(_label(s))} | {_ms(a.get('p95_ms'))} → {_ms(b.get('p95_ms'))} | {change} | "
                     f"{'**WORSE**' if verdict == 'WORSE' else _text(verdict)} |")
    if len(rows) > len(shown):
        counts: dict[str, int] = {}
        for s in rows[len(shown):]:
            counts[str(s.get("verdict"))] = counts.get(str(s.get("verdict")), 0) + 1
        rest = ", ".join(f"{n} {_text(v)}" for v, n in sorted(counts.items()))
        lines.append(f"\n{len(rows) - len(shown)} more rows: {rest}")
    lines.append("")
    return lines


def _label(step: Mapping[str, Any]) -> str:
    journey, name = step.get("journey") or "", step.get("step") or ""
    return f"{journey}/{name}" if journey or name else "overall"


def _observed(v: Mapping[str, Any]) -> str:
    value, metric = v.get("observed"), v.get("metric")
    if value is None:
        return "no data"
    if metric == "error_rate":
        return f"{float(value) * 100:.2f} %"
    if metric == "throughput":
        return f"{float(value):.2f}/s"
    return f"{float(value):.2f} ms"


def _finite(value: Any, default: float) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return default
    return number if math.isfinite(number) else default


def _pct(value: Any) -> str:
    number = _finite(value, math.nan)
    return "–" if math.isnan(number) else f"{number:+.1%}"


def _ms(value: Any) -> str:
    number = _finite(value, math.nan)
    return "–" if math.isnan(number) else f"{number:.2f}"


def _code(text: str) -> str:
    """Inline code that holds any text: a fence longer than its longest run of backticks, pipes escaped for
    tables, lines joined."""
    text = " ".join(text.split()).replace("|", "\\|")
    ticks, run = 1, 0
    for ch in text:
        run = run + 1 if ch == "`" else 0
        ticks = max(ticks, run + 1)
    fence = "`" * ticks
    pad = " " if text.startswith("`") or text.endswith("`") or not text else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def _text(text: str) -> str:
    """Plain text of ours (verdicts, reasons, notes) that may quote a name: no HTML, no mention, no table break."""
    out = " ".join(text.split()).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return out.replace("|", "\\|").replace("@", "@\u200b")


def _link(url: str) -> str:
    return url.replace(" ", "%20").replace("(", "%28").replace(")", "%29").replace("<", "%3C").replace(">", "%3E")
