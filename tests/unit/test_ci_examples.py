"""The CI examples teams copy (GitHub Actions, GitLab CI, Jenkins): each parses, runs a spec's CI profile,
gates, and publishes the JUnit XML, the HTML report and the Markdown summary even when the gate fails;
every perfhouse command in them is a real command with real options (checked against click's tree).

`perfhouse gate` and `report --format html` are being added by other work; until they exist here they
are reported as pending rather than failing, and checked in full once they do.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import ROOT
from tests.support.clicheck import Pending, check, commands_in

CI = ROOT / "examples" / "ci"
PENDING: tuple[Pending, ...] = (
    (("gate",), None, None),  # perfhouse gate RUN --junit FILE --summary FILE
    (("report",), "--format", "html"),  # the self-contained HTML report
)
JUNIT, SUMMARY, HTML = "perfhouse-junit.xml", "perfhouse-summary.md", "perfhouse-report.html"
COMMENT = "perfhouse-comment.md"


def github_lines() -> list[str]:
    workflow = yaml.safe_load((CI / "github-actions.yml").read_text(encoding="utf-8"))
    return [step["run"] for job in workflow["jobs"].values() for step in job["steps"] if "run" in step]


def gitlab_lines() -> list[str]:
    pipeline = yaml.safe_load((CI / ".gitlab-ci.yml").read_text(encoding="utf-8"))
    job = pipeline["load-test"]
    return [line for key in ("before_script", "script", "after_script") for line in job.get(key, [])]


def jenkins_lines() -> list[str]:
    text = (CI / "Jenkinsfile").read_text(encoding="utf-8")
    _balanced(text)
    return [m[2] for m in re.finditer(r"""\bsh\s+(['"])(.*?)\1""", text)]


def _balanced(text: str) -> None:
    """A Jenkinsfile is Groovy; with no Groovy parser here, check its braces and brackets pair up."""
    stack: list[str] = []
    pairs = {")": "(", "]": "[", "}": "{"}
    quote = ""
    for ch in text:
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch in "([{":
            stack.append(ch)
        elif ch in pairs:
            assert stack and stack.pop() == pairs[ch], "unbalanced Jenkinsfile"
    assert not stack and not quote, "unbalanced Jenkinsfile"


EXAMPLES = {"github": github_lines, "gitlab": gitlab_lines, "jenkins": jenkins_lines}


def invocations(example: str) -> list[list[str]]:
    return [argv for line in EXAMPLES[example]() for argv in commands_in(" ".join(line.split()))]


@pytest.mark.parametrize("example", EXAMPLES)
def test_each_example_runs_the_ci_profile_gates_and_reports(example: str) -> None:
    found = invocations(example)
    run = next(a for a in found if a[0] == "run")
    assert run[run.index("--profile") + 1] == "ci" and run[1].endswith(".yaml")
    # the run gates its own runs (never another job's `latest`), whatever their verdict
    assert "--gate" in run and run[run.index("--junit") + 1] == JUNIT and run[run.index("--summary") + 1] == SUMMARY
    assert run[run.index("--comment") + 1] == COMMENT
    # the HTML report of the runs it made, written by the run itself: a later `report latest` could show
    # another job's run of a shared warehouse
    assert run[run.index("--report") + 1] == HTML
    assert not any(a[0] == "report" for a in found)


@pytest.mark.parametrize("example", EXAMPLES)
def test_every_perfhouse_command_in_an_example_is_real(example: str) -> None:
    results = [check(argv, PENDING) for argv in invocations(example)]
    wrong = [(r.argv, r.problem) for r in results if r.problem and not r.pending]
    assert not wrong
    assert {r.argv[0] for r in results} >= {"validate", "run"}


def test_the_checker_catches_a_wrong_option_and_a_wrong_choice() -> None:
    assert check(["run", "x.yaml", "--profil", "ci"], PENDING).problem == "run: no option --profil"
    assert not check(["report", "latest", "--format", "pdf"], PENDING).pending
    assert not check(["gates", "latest"], PENDING).pending
    assert check(["run", "x.yaml", "--profile", "ci", "--tool", "k6,jmeter", "--env", "ci"]).problem == ""


def test_github_publishes_whatever_the_gate_says() -> None:
    workflow: dict[str, Any] = yaml.safe_load((CI / "github-actions.yml").read_text(encoding="utf-8"))
    steps = next(iter(workflow["jobs"].values()))["steps"]
    gate = next(i for i, s in enumerate(steps) if "--gate" in s.get("run", ""))
    after = steps[gate + 1 :]
    assert after and all(str(s.get("if", "")).startswith("always()") for s in after)
    published = yaml.safe_dump(after)
    for name in (JUNIT, SUMMARY, HTML, COMMENT):
        assert name in published
    # the gate appends its summary to the job summary itself: a step copying it again would show it twice
    assert not any("GITHUB_STEP_SUMMARY" in s.get("run", "") for s in steps)
    assert any("gh pr comment" in s.get("run", "") and "--body-file" in s["run"] for s in after)


def test_gitlab_keeps_the_reports_whatever_the_gate_says() -> None:
    job = yaml.safe_load((CI / ".gitlab-ci.yml").read_text(encoding="utf-8"))["load-test"]
    assert job["artifacts"]["when"] == "always" and job["artifacts"]["reports"]["junit"] == JUNIT
    assert {JUNIT, SUMMARY, HTML} <= set(job["artifacts"]["paths"])
    assert any("perfhouse-comment" in line for line in job["after_script"])  # runs when the gate fails too


def test_jenkins_publishes_in_post_always() -> None:
    text = (CI / "Jenkinsfile").read_text(encoding="utf-8")
    post = text[text.index("post {"):]
    assert "always {" in post
    for needle in (f"testResults: '{JUNIT}'", f"reportFiles: '{HTML}'", "perfhouse-*.md"):
        assert needle in post


def test_the_ci_spec_exists_with_a_ci_profile() -> None:
    spec = yaml.safe_load((ROOT / "examples" / "shop.yaml").read_text(encoding="utf-8"))
    assert "ci" in spec["profiles"]


def test_every_perfhouse_command_the_docs_show_is_real() -> None:
    readme = "\n".join(p.read_text(encoding="utf-8") for p in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))])
    lines = [line.split("#", 1)[0] for block in re.findall(r"```sh\n(.*?)\n```", readme, re.S)
             for line in block.splitlines()]
    lines += re.findall(r"`(perfhouse [^`]+)`", readme)
    results = [check(argv, PENDING) for line in lines for argv in commands_in(line)]
    assert len(results) > 20
    wrong = [(r.argv, r.problem) for r in results if r.problem and not r.pending]
    assert not wrong


def test_run_report_takes_its_format_from_the_file_and_refuses_others(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from orchestrator.cli import main

    spec = ROOT / "examples" / "shop.yaml"
    result = CliRunner().invoke(main, ["--warehouse", f"chdb://{tmp_path / 'wh'}", "run", str(spec), "--profile",
                                       "ci", "--report", str(tmp_path / "report.pdf")])
    assert result.exit_code == 2 and "a report is .html, .md or .json" in result.output
    assert not (tmp_path / "wh").exists()  # refused before anything ran
    suite = ROOT / "examples" / "suite.yaml"
    result = CliRunner().invoke(main, ["--warehouse", f"chdb://{tmp_path / 'wh'}", "run", str(suite), "--report",
                                       str(tmp_path / "report.html")])
    assert result.exit_code == 2 and "--report writes the report of one spec's runs" in result.output
