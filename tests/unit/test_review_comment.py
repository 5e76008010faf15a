"""The gate's pull/merge request comment: the verdict, the worst steps first with before/after and interval,
the report link, and names from specs or imported files that cannot mention anyone or break the Markdown."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from warehouse.report.review_comment import MARKER, WORST, _code, ci_report_url, comment_markdown


def step(name: str, verdict: str, shift: float, a: float = 100.0) -> dict[str, Any]:
    return {"journey": "shop", "step": name, "verdict": verdict, "p95_shift": shift,
            "p95_shift_interval": [shift - 0.05, shift + 0.05], "a": {"p95_ms": a}, "b": {"p95_ms": a * (1 + shift)}}


def result(steps: list[dict[str, Any]], exit_status: int = 8, outcome: str = "FAILED: regression") -> dict[str, Any]:
    return {"run": {"run_id": "20260101-000000-k6-aaaa", "tool": "k6", "spec_name": "shop", "profile": "ci"},
            "outcome": outcome, "exit_status": exit_status, "verdict": "PASSED",
            "slos": [{"slo": "overall p95 < 500 ms", "metric": "p95", "observed": 120.0, "passed": True}],
            "baseline": {"run_id": "20251231-000000-k6-bbbb", "how": "auto"},
            "comparison": {"a": {"run_id": "20251231-000000-k6-bbbb"}, "baseline": "auto", "steps": steps,
                           "overall": {"journey": "", "step": "", "verdict": "SAME", "p95_shift": 0.01}},
            "notes": []}


def test_the_worst_steps_come_first_with_before_after_and_interval() -> None:
    steps = [step(f"s{i}", "SAME", 0.0) for i in range(8)] + [step("pay", "WORSE", 0.4), step("cart", "WORSE", 0.2)]
    text = comment_markdown([result(steps)], "https://ci.example.com/1")
    rows = [line for line in text.splitlines() if line.startswith("| `")]
    assert text.startswith(MARKER + "\n### ❌ perfhouse gate: FAILED: regression (exit 8)")
    assert rows[0] == "| `shop/pay` | 100.00 → 140.00 | +40.0% (+35.0% to +45.0%) | **WORSE** |"
    assert rows[1].startswith("| `shop/cart` |") and len(rows) == WORST
    assert "6 more rows: 6 SAME" in text and "every SLO holds (1)" in text
    assert text.rstrip().endswith("[HTML report](https://ci.example.com/1)")


def test_a_pass_says_so_and_a_breach_names_the_slo() -> None:
    assert "### ✅ perfhouse gate: PASSED (exit 0)" in comment_markdown([result([], 0, "PASSED")])
    breached = result([], 3, "FAILED: SLO breached")
    breached["slos"][0].update(passed=False, observed=612.5)
    assert "- SLO breached: `overall p95 < 500 ms` (observed 612.50 ms)" in comment_markdown([breached])


def test_hostile_names_stay_inert() -> None:
    text = comment_markdown([result([step("@team <img src=x onerror=alert(1)> | `x` ``y", "WORSE", 0.3)])])
    row = next(line for line in text.splitlines() if "img" in line)
    assert row.count(" | ") == 3  # four cells: the name's pipe is escaped
    assert row.startswith("| ```shop/@team <img src=x onerror=alert(1)> \\| `x` ``y``` |")


@given(st.text())
def test_any_name_is_one_code_span(name: str) -> None:
    span = _code(name)
    fence = len(span) - len(span.lstrip("`"))
    inner = span[fence:-fence]
    assert "\n" not in span and "`" * fence not in inner


def test_the_report_link_defaults_to_the_ci_jobs_page() -> None:
    github = {"GITHUB_SERVER_URL": "https://github.com", "GITHUB_REPOSITORY": "a/b", "GITHUB_RUN_ID": "5"}
    assert ci_report_url(github) == "https://github.com/a/b/actions/runs/5"
    assert ci_report_url({"CI_JOB_URL": "https://gitlab.example.com/a/b/-/jobs/3"}).endswith("/jobs/3")
    assert ci_report_url({}) == ""


def test_a_repeated_set_is_named_by_all_its_runs_in_the_comment_and_the_notification() -> None:
    from orchestrator.notify import from_gate, payload

    judged = result([step("pay", "WORSE", 0.3)])
    ids = ["20260101-000000-k6-aaaa", "20260101-000100-k6-cccc", "20260101-000200-k6-dddd"]
    judged["repeats"] = [{"run_id": i, "status": "completed", "verdict": "PASSED"} for i in ids]
    text = comment_markdown([judged])
    assert "`k6` set of 3 runs `20260101-000000-k6-aaaa`, `20260101-000100-k6-cccc`, `20260101-000200-k6-dddd`" in text
    body = payload(from_gate([judged]), 8)
    assert body is not None and "k6 set of 3 runs " + ", ".join(ids) + ": FAILED: regression" in body["text"]
    assert body["runs"][0]["repeats"] == ids
    single = payload(from_gate([result([step("pay", "WORSE", 0.3)])]), 8)
    assert single is not None and "k6 run 20260101-000000-k6-aaaa: FAILED: regression" in single["text"]
