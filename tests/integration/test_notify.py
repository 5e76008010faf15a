"""--notify against a local webhook on 127.0.0.1: what it posts, its one retry, its bounded time, and a failure
that is one warning line and never another verdict or exit status."""

from __future__ import annotations

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any, ClassVar

import pytest
from click.testing import CliRunner

from orchestrator.cli import main
from orchestrator.notify import from_gate, from_runs, payload, send
from tests.support.localhttp import serving
from warehouse.errors import ExitStatus
from warehouse.store import RunInfo, Warehouse

pytestmark = pytest.mark.integration


class Hook(BaseHTTPRequestHandler):
    """Answers with the statuses queued in `answers` (then 200), or sleeps `stall_s` before answering."""

    answers: ClassVar[list[int]] = []
    bodies: ClassVar[list[dict[str, Any]]] = []
    stall_s: ClassVar[float] = 0.0
    stalled: ClassVar[threading.Event] = threading.Event()

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        Hook.bodies.append(json.loads(body))
        if Hook.stall_s:
            Hook.stalled.wait(Hook.stall_s)
        self.send_response(Hook.answers.pop(0) if Hook.answers else 200)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def hook() -> Any:
    Hook.answers, Hook.bodies, Hook.stall_s = [], [], 0.0
    Hook.stalled.clear()
    with serving(Hook, "/services/T000/B000/s3cr3t") as url:
        yield url
    Hook.stalled.set()


GATED = {"run": {"run_id": "20260101-000000-k6-aaaa", "tool": "k6", "spec_name": "shop", "profile": "ci"},
         "outcome": "FAILED: regression", "exit_status": 8, "verdict": "PASSED", "slos": [],
         "comparison": {"steps": [{"journey": "checkout", "step": "<!channel> pay", "verdict": "WORSE",
                                   "reason": "slower: p95 +40.0 %"}], "overall": {"verdict": "SAME"}}}


def test_a_worse_gate_posts_slack_text_and_structured_fields(hook: str) -> None:
    warnings: list[str] = []
    body = payload(from_gate([GATED]), 8, "https://ci.example.com/job/1")
    assert body is not None and send(hook, body, warnings.append)
    (got,) = Hook.bodies
    assert got["event"] == "WORSE" and got["exit_status"] == 8 and got["runs"][0]["run_id"] == GATED["run"]["run_id"]
    assert got["runs"][0]["worse_steps"] == ["checkout/<!channel> pay: slower: p95 +40.0 %"]
    assert "&lt;!channel&gt; pay" in got["text"] and "<!channel>" not in got["text"]  # no one is paged by a name
    assert got["text"].endswith("<https://ci.example.com/job/1|report>") and not warnings


@pytest.mark.parametrize(("verdict", "exit_status", "event"), [
    ("PASSED", 0, None), ("NO SLOS", 0, None), ("FAILED", 3, "FAILED"), ("ABORTED", 9, "ABORTED"),
    ("INCOMPLETE", 9, "INCOMPLETE"),
])
def test_only_runs_that_need_someone_notify(verdict: str, exit_status: int, event: str | None) -> None:
    result = {**GATED, "verdict": verdict, "exit_status": exit_status, "comparison": None}
    body = payload(from_gate([result]), exit_status)
    assert (body and body["event"]) == event
    ran = payload(from_runs([{"run_id": "r", "tool": "k6", "verdict": verdict}]), exit_status)
    assert (ran and ran["event"]) == event


def test_a_server_error_is_tried_once_more(hook: str) -> None:
    Hook.answers = [503]
    warnings: list[str] = []
    assert send(hook, {"text": "x"}, warnings.append, retry_after_s=0.01)
    assert len(Hook.bodies) == 2 and not warnings


def test_a_webhook_that_keeps_failing_is_one_warning_without_its_secret(hook: str) -> None:
    Hook.answers = [500, 500]
    warnings: list[str] = []
    assert not send(hook, {"text": "x"}, warnings.append, retry_after_s=0.01)
    assert len(Hook.bodies) == 2
    (line,) = warnings
    assert "HTTP 500" in line and "the verdict stands" in line and "s3cr3t" not in line and "\n" not in line


def test_a_client_error_is_not_retried(hook: str) -> None:
    Hook.answers = [404]
    warnings: list[str] = []
    assert not send(hook, {"text": "x"}, warnings.append, retry_after_s=0.01)
    assert len(Hook.bodies) == 1 and "HTTP 404" in warnings[0]


def test_a_webhook_that_never_answers_costs_a_bounded_wait(hook: str) -> None:
    Hook.stall_s = 30.0
    warnings: list[str] = []
    assert not send(hook, {"text": "x"}, warnings.append, attempt_timeout_s=0.2, retry_after_s=0.01,
                    total_timeout_s=5.0)
    assert len(warnings) == 1 and "timed out" in warnings[0]


def closed_port() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}/hook"


def test_a_failed_notification_never_changes_the_gates_exit_status(tmp_path: Path) -> None:
    url = f"chdb://{tmp_path / 'wh'}"
    Warehouse.open(url).save_run(RunInfo("20260101-000000-k6-aaaa", "k6", "aborted", spec_name="shop"))
    result = CliRunner().invoke(main, ["--warehouse", url, "gate", "latest", "--notify", closed_port()])
    assert result.exit_code == ExitStatus.RUN_INCOMPLETE, result.output
    warnings = [line for line in result.output.splitlines() if line.startswith("perfhouse: warning: notification")]
    assert len(warnings) == 1


@pytest.mark.parametrize("bad", ["ftp://example.com/hook", "hooks.slack.com/services/x", "http:///nohost"])
def test_a_webhook_that_is_not_http_is_a_usage_error(bad: str, tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["--warehouse", f"chdb://{tmp_path / 'wh'}", "gate", "--notify", bad])
    assert result.exit_code == ExitStatus.USAGE and "expected an http:// or https:// webhook URL" in result.output


BREACHED = """\
name: breached
services:
  api: http://127.0.0.1:1
journeys:
  - name: browse
    steps:
      - name: list
        path: /products
profiles:
  quick:
    executor: iterations
    vus: 1
    iterations: 5
slos:
  - {metric: p95, threshold: 1ms}
"""


def test_a_run_without_a_gate_notifies_its_own_slo_breach(hook: str, tmp_path: Path) -> None:
    import subprocess
    import sys

    from orchestrator.demo_api import DemoAPI
    from tests.conftest import need

    need("k6")
    spec = tmp_path / "breached.yaml"
    spec.write_text(BREACHED, encoding="utf-8")
    with DemoAPI(delay_ms=(5.0, 10.0)) as api:
        proc = subprocess.run([sys.executable, "-m", "orchestrator", "--warehouse", f"chdb://{tmp_path / 'wh'}", "run",
                               str(spec), "--profile", "quick", "--service", f"api={api.url}", "--notify", hook,
                               "--runs-dir", str(tmp_path / "runs"), "--progress-interval", "0", "--env", "ci"],
                              capture_output=True, text=True, timeout=120)
    assert proc.returncode == ExitStatus.SLO_FAILED, proc.stderr
    (got,) = Hook.bodies
    assert got["event"] == "FAILED" and got["exit_status"] == 3
    (run,) = got["runs"]
    assert (run["spec"], run["profile"], run["environment"], run["tool"]) == ("breached", "quick", "ci", "k6")
    assert run["failed_slos"] == ["overall p95 < 1 ms"] and "notification" not in proc.stderr
