"""The CI examples executed as their CI system would: every shell step of the GitHub workflow (with its `if:`
conditions) and the GitLab job's script and after_script, against a real k6 run of a tiny spec on the demo
API at 127.0.0.1. `pip`, `gh` and `curl` are stand-ins that record what they were asked; `perfhouse` is this
checkout; the webhook is a local receiver.

On an SLO breach the job must publish the JUnit XML, one job summary and the comment, notify, and still end
failed; on a pass it publishes the same and ends green.
"""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any, ClassVar

import pytest
import yaml

from orchestrator.demo_api import DemoAPI
from tests.conftest import ROOT, need
from tests.support.localhttp import serving

pytestmark = pytest.mark.integration

SPEC = """\
name: ci-shop
services:
  api: http://127.0.0.1:1
journeys:
  - name: browse
    steps:
      - name: list
        path: /products
profiles:
  ci:
    executor: constant_vus
    vus: 2
    duration: 2s
slos:
  - metric: p95
    threshold: {p95}
"""
PR_NUMBER = 7


class Hook(BaseHTTPRequestHandler):
    received: ClassVar[list[dict[str, Any]]] = []

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", 0))
        Hook.received.append(json.loads(self.rfile.read(length)))
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, format: str, *args: Any) -> None:
        pass


def stand_ins(bin_dir: Path) -> None:
    """perfhouse (this checkout), and pip, gh and curl that append their arguments to calls.log."""
    bin_dir.mkdir()
    scripts = {
        "perfhouse": f'#!/bin/sh\nexec "{sys.executable}" -m orchestrator "$@"\n',
        "pip": '#!/bin/sh\necho "pip $*" >> calls.log\n',
        "gh": '#!/bin/sh\necho "gh $*" >> calls.log\n'
              'while [ $# -gt 0 ]; do [ "$1" = --body-file ] && cp "$2" gh-body.md; shift; done\n',
        "curl": '#!/bin/sh\necho "curl $*" >> calls.log\n'
                'for a in "$@"; do case "$a" in @*) cp "${a#@}" curl-body.json;; esac; done\n',
    }
    for name, text in scripts.items():
        path = bin_dir / name
        path.write_text(text, encoding="utf-8")
        path.chmod(path.stat().st_mode | stat.S_IEXEC)


@dataclass
class Workspace:
    root: Path
    env: dict[str, str]
    hook: str
    log: list[tuple[str, int]] = field(default_factory=list)  # (step, exit status) of each step run

    def calls(self) -> list[str]:
        log = self.root / "calls.log"
        return log.read_text(encoding="utf-8").splitlines() if log.exists() else []

    def shell(self, script: str, env: dict[str, str]) -> int:
        proc = subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script], cwd=self.root,
                              env={**self.env, **env}, capture_output=True, text=True, timeout=300)
        self.log.append((script, proc.returncode))
        return proc.returncode


@pytest.fixture
def workspace(tmp_path: Path, request: pytest.FixtureRequest) -> Workspace:
    need("k6")
    root = tmp_path / "repo"
    (root / "examples").mkdir(parents=True)
    (root / "examples" / "shop.yaml").write_text(SPEC.format(p95=request.param), encoding="utf-8")
    stand_ins(tmp_path / "bin")
    env = {**os.environ, "PATH": f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}", "CI": "true"}
    env.pop("GITHUB_STEP_SUMMARY", None)
    env.pop("PERFHOUSE_WAREHOUSE", None)
    return Workspace(root, env, "")


# -- GitHub Actions ------------------------------------------------------------------------------------------


def evaluate(expr: str, context: dict[str, Any], failed: bool) -> Any:
    """A GitHub expression of the forms the example uses: status functions, ! && || == !=, 'strings', contexts."""
    expr = expr.strip().removeprefix("${{").removesuffix("}}").strip()

    def lookup(path: str) -> Any:
        value: Any = context
        for key in path.split("."):
            value = value.get(key, "") if isinstance(value, dict) else ""
        return value

    py = re.sub(r"\b(always|success|failure|cancelled)\(\)", r"_\1", expr)
    py = re.sub(r"(?<!['\w])([a-z_]+(?:\.[A-Za-z0-9_\-]+)+)", lambda m: repr(lookup(m[1])), py)
    py = py.replace("&&", " and ").replace("||", " or ").replace("!=", "\0").replace("!", " not ").replace("\0", "!=")
    names = {"_always": True, "_success": not failed, "_failure": failed, "_cancelled": False}
    return eval(py, {"__builtins__": {}}, names)  # the example's own expression, no input of anyone's


def expand(text: str, context: dict[str, Any]) -> str:
    return re.sub(r"\$\{\{(.*?)\}\}", lambda m: str(evaluate(m[1], context, False)), text)


def run_github(ws: Workspace, context: dict[str, Any]) -> tuple[bool, list[dict[str, Any]]]:
    """Run the workflow's job as GitHub would: its env, each step's `if:` (default success()), shell steps in
    bash -eo pipefail. Returns whether the job failed and the `uses:` steps that ran."""
    workflow = yaml.safe_load((ROOT / "examples" / "ci" / "github-actions.yml").read_text(encoding="utf-8"))
    (job,) = workflow["jobs"].values()
    env = {k: expand(str(v), context) for k, v in job.get("env", {}).items()}
    env.update(GITHUB_STEP_SUMMARY=str(ws.root / "step-summary.md"), GITHUB_SERVER_URL="https://github.com",
               GITHUB_REPOSITORY="acme/shop", GITHUB_RUN_ID="99", GITHUB_ACTIONS="true")
    failed, used = False, []
    for step in job["steps"]:
        if not evaluate(str(step.get("if", "success()")), context, failed):
            context["steps"].setdefault(step.get("id", ""), {"outcome": "skipped"})
            continue
        if "uses" in step:
            used.append(step)
            continue
        code = ws.shell(expand(step["run"], context), {**env, **{k: expand(str(v), context)
                                                                 for k, v in step.get("env", {}).items()}})
        if step.get("id"):
            context["steps"][step["id"]] = {"outcome": "success" if code == 0 else "failure"}
        failed = failed or code != 0
    return failed, used


@pytest.mark.parametrize("workspace", ["1ms"], indirect=True)
def test_github_on_an_slo_breach_publishes_junit_one_summary_and_a_comment_then_fails(workspace: Workspace) -> None:
    Hook.received = []
    with DemoAPI() as api, serving(Hook, "/hook/secret-part") as hook:
        context = github_context(workspace, api.url, hook)
        failed, used = run_github(workspace, context)
    root = workspace.root
    assert failed  # the job ends red
    assert context["steps"]["load"]["outcome"] == "failure"
    junit = (root / "perfhouse-junit.xml").read_text(encoding="utf-8")
    assert 'type="SLOBreach"' in junit
    assert (root / "step-summary.md").read_text(encoding="utf-8").count("## perfhouse gate") == 1
    # the report is the job's own run's (written by `run --report`), whatever ran on the warehouse after it
    run_id = re.search(r'<property name="run_id" value="([^"]+)"', junit)
    assert run_id and run_id[1] in (root / "perfhouse-report.html").read_text(encoding="utf-8")
    gh = [c for c in workspace.calls() if c.startswith("gh ")]
    assert gh == [f"gh pr comment {PR_NUMBER} --body-file perfhouse-comment.md"]
    body = (root / "gh-body.md").read_text(encoding="utf-8")
    assert body.startswith("<!-- perfhouse gate -->") and "SLO breached: `overall p95 < 1 ms`" in body
    assert "[HTML report](https://github.com/acme/shop/actions/runs/99)" in body  # the run's artifacts
    (note,) = Hook.received
    assert note["event"] == "FAILED" and note["exit_status"] == 3 and "FAILED" in note["text"]
    published = yaml.safe_dump(used)
    for name in ("perfhouse-junit.xml", "perfhouse-report.html", "perfhouse-summary.md", "perfhouse-comment.md"):
        assert name in published and (root / name).exists()


@pytest.mark.parametrize("workspace", ["5s"], indirect=True)
def test_github_on_a_pass_publishes_the_same_and_stays_green(workspace: Workspace) -> None:
    Hook.received = []
    with DemoAPI() as api, serving(Hook, "/hook") as hook:
        context = github_context(workspace, api.url, hook)
        failed, _ = run_github(workspace, context)
    assert not failed, workspace.log
    assert (workspace.root / "step-summary.md").read_text(encoding="utf-8").count("## perfhouse gate") == 1
    assert "PASSED" in (workspace.root / "gh-body.md").read_text(encoding="utf-8")
    assert Hook.received == []  # nobody is woken for a pass


def github_context(ws: Workspace, api_url: str, hook: str) -> dict[str, Any]:
    return {"vars": {"API_URL": api_url},
            "secrets": {"PERFHOUSE_WAREHOUSE": f"chdb://{ws.root.parent / 'warehouse'}", "PERFHOUSE_NOTIFY_URL": hook},
            "github": {"event_name": "pull_request", "token": "t0ken", "event": {"pull_request": {"number": PR_NUMBER}}},
            "steps": {}}


# -- GitLab CI -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("workspace", ["1ms"], indirect=True)
def test_gitlab_on_an_slo_breach_keeps_the_reports_posts_the_note_and_fails(workspace: Workspace) -> None:
    job = yaml.safe_load((ROOT / "examples" / "ci" / ".gitlab-ci.yml").read_text(encoding="utf-8"))["load-test"]
    Hook.received = []
    with DemoAPI() as api, serving(Hook, "/hook") as hook:
        env = {"API_URL": api.url, "PERFHOUSE_WAREHOUSE": f"chdb://{workspace.root.parent / 'warehouse'}",
               "PERFHOUSE_NOTIFY_URL": hook, "CI_MERGE_REQUEST_IID": "12", "PERFHOUSE_GITLAB_TOKEN": "glpat-x",
               "CI_API_V4_URL": "https://gitlab.example.com/api/v4", "CI_PROJECT_ID": "42",
               "CI_JOB_URL": "https://gitlab.example.com/g/p/-/jobs/9"}
        # before_script and script run in one shell that stops at the first failing line; after_script in another
        main = workspace.shell("\n".join([*job["before_script"], *job["script"]]), env)
        after = workspace.shell("\n".join(job["after_script"]), env)
    root = workspace.root
    assert main == 3 and after == 0
    assert 'type="SLOBreach"' in (root / job["artifacts"]["reports"]["junit"]).read_text(encoding="utf-8")
    assert all((root / p).exists() for p in job["artifacts"]["paths"])
    (curl,) = [c for c in workspace.calls() if c.startswith("curl ")]
    assert "PRIVATE-TOKEN: glpat-x" in curl and curl.endswith("/projects/42/merge_requests/12/notes")
    note = json.loads((root / "curl-body.json").read_text(encoding="utf-8"))["body"]
    assert "SLO breached" in note and "https://gitlab.example.com/g/p/-/jobs/9/artifacts/file/perfhouse-report.html" in note
    assert [n["event"] for n in Hook.received] == ["FAILED"]
