"""Notifications: when a run or its gate ends FAILED, WORSE, ABORTED or INCOMPLETE, one JSON POST to a webhook.

The payload is what Slack's incoming webhooks take (`text`, with Slack's control characters escaped so no run or
step name can mention @channel or forge a link) and what a generic webhook reads (`event`, `exit_status`,
`runs`: structured fields). A webhook that fails or is slow never changes a verdict or an exit status: it gets
one retry, a bounded time, and a one-line warning on standard error.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from orchestrator import __version__

EVENTS = ("ABORTED", "INCOMPLETE", "FAILED", "WORSE")  # most severe first; PASSED and NO SLOS notify nobody
ATTEMPT_TIMEOUT_S = 5.0  # one POST's connect and read timeout
RETRY_AFTER_S = 1.0
TOTAL_TIMEOUT_S = 2 * ATTEMPT_TIMEOUT_S + RETRY_AFTER_S + 1.0  # however the server drips its answer
_SLO_FAILED, _REGRESSION = 3, 8  # ExitStatus values a gate's result carries


@dataclass(frozen=True)
class RunNotice:
    """One run's part of a notification."""

    run_id: str
    tool: str
    event: str  # one of EVENTS, or "" when this run needs nobody
    verdict: str
    outcome: str
    spec: str = ""
    profile: str = ""
    environment: str = ""
    failed_slos: list[str] = field(default_factory=list)
    worse_steps: list[str] = field(default_factory=list)
    repeats: list[str] = field(default_factory=list)  # the runs of a set judged as one (`run --repeat N`)

    def what(self) -> str:
        """'k6 run ID', or for a repeated set 'k6 set of N runs ID1, ID2, ...'."""
        if len(self.repeats) > 1:
            return f"{self.tool} set of {len(self.repeats)} runs {', '.join(self.repeats)}"
        return f"{self.tool} run {self.run_id}"


def from_gate(results: Sequence[Mapping[str, Any]]) -> list[RunNotice]:
    """Notices from the gate's results as their `to_dict()` gives them."""
    notices = []
    for r in results:
        run, verdict, status = r.get("run") or {}, str(r.get("verdict", "")), int(r.get("exit_status", 0))
        event = verdict if verdict in ("ABORTED", "INCOMPLETE") else {_SLO_FAILED: "FAILED",
                                                                        _REGRESSION: "WORSE"}.get(status, "")
        comparison = r.get("comparison") or {}
        rows = [*(comparison.get("steps") or []), *([comparison["overall"]] if comparison.get("overall") else [])]
        worse = [f"{_label(s)}: {s.get('reason', '')}" for s in rows if s.get("verdict") == "WORSE"]
        notices.append(RunNotice(
            str(run.get("run_id", "")), str(run.get("tool", "")), event, verdict, str(r.get("outcome", verdict)),
            str(run.get("spec_name", "")), str(run.get("profile", "")), str(run.get("environment", "")),
            _failed_slos(r.get("slos") or []), worse, [str(x.get("run_id", "")) for x in r.get("repeats") or []]))
    return notices


def from_runs(outcomes: Sequence[Mapping[str, Any]], spec: str = "", profile: str = "",
              environment: str = "") -> list[RunNotice]:
    """Notices from `perfhouse run`'s outcomes (their `to_dict()`), when no gate judged them."""
    notices = []
    for o in outcomes:
        verdict = str(o.get("verdict", ""))
        event = verdict if verdict in ("ABORTED", "INCOMPLETE", "FAILED") else ""
        notices.append(RunNotice(str(o.get("run_id", "")), str(o.get("tool", "")), event, verdict, verdict,
                                 spec, profile, environment, _failed_slos(o.get("slos") or [])))
    return notices


def payload(notices: Sequence[RunNotice], exit_status: int, report_url: str = "") -> dict[str, Any] | None:
    """The JSON to post (`exit_status`: the command's), or None when no run needs anyone."""
    needing = [n for n in notices if n.event]
    if not needing:
        return None
    event = next(e for e in EVENTS if any(n.event == e for n in needing))
    lines = [f"perfhouse: {event}"]
    for n in needing:
        what = " / ".join(x for x in (n.spec, n.profile, n.environment) if x)
        lines.append(f"• {what + ' · ' if what else ''}{n.what()}: {n.outcome}")
        lines += [f"    SLO breached: {s}" for s in n.failed_slos[:5]]
        lines += [f"    WORSE {s}" for s in n.worse_steps[:5]]
    text = "\n".join(_slack_escape(line) for line in lines)
    if report_url:
        text += f"\n<{_slack_escape(report_url).replace('|', '%7C')}|report>"
    return {"text": text, "event": event, "exit_status": int(exit_status),
            "report_url": report_url or None, "runs": [asdict(n) for n in notices], "source": "perfhouse"}


def send(url: str, body: Mapping[str, Any], warn: Callable[[str], None],
         attempt_timeout_s: float = ATTEMPT_TIMEOUT_S, retry_after_s: float = RETRY_AFTER_S,
         total_timeout_s: float = TOTAL_TIMEOUT_S) -> bool:
    """POST `body` as JSON; one retry on a network error, a timeout, 429 or 5xx. Whatever happens it returns
    within `total_timeout_s`; a failure is one warning, never an exception."""
    data = json.dumps(body, default=str).encode()
    outcome: list[str] = []

    def post() -> None:
        problem = ""
        for attempt in range(2):
            if attempt:
                time.sleep(retry_after_s)
            problem, again = _post_once(url, data, attempt_timeout_s)
            if not problem or not again:
                break
        outcome.append(problem)

    worker = threading.Thread(target=post, name="perfhouse-notify", daemon=True)
    worker.start()
    worker.join(total_timeout_s)
    problem = outcome[0] if outcome else f"no answer within {total_timeout_s:g}s"
    if problem:
        warn(f"perfhouse: warning: notification to {where(url)} failed ({problem}); the verdict stands")
    return not problem


def notify(url: str, notices: Sequence[RunNotice], exit_status: int, warn: Callable[[str], None],
           report_url: str = "") -> bool:
    """Post the notices that need someone; True when there was nothing to post or it was delivered."""
    body = payload(notices, exit_status, report_url)
    return True if body is None else send(url, body, warn)


def check_url(url: str) -> str:
    """A webhook URL as --notify takes it: http or https with a host; raises ValueError saying what is wrong."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"expected an http:// or https:// webhook URL, found {where(url)!r}")
    return url


def where(url: str) -> str:
    """A webhook URL fit to print: its scheme and host only (the path and query of a webhook are its secret)."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return f"{parts.scheme}://{host}/…" if parts.scheme and host else "(not a URL)"


def _post_once(url: str, data: bytes, timeout_s: float) -> tuple[str, bool]:
    """('', _) when delivered, else (the problem, whether to try again)."""
    request = urllib.request.Request(url, data=data, method="POST", headers={
        "Content-Type": "application/json", "User-Agent": f"perfhouse/{__version__}"})
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:  # an http(s) URL: check_url
            response.read(65536)
        return "", False
    except urllib.error.HTTPError as exc:
        return f"HTTP {exc.code}", exc.code == 429 or exc.code >= 500
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        return f"{type(reason).__name__}: {reason}"[:200], True


def _failed_slos(slos: Sequence[Mapping[str, Any]]) -> list[str]:
    return [str(v.get("slo", "")) for v in slos if not v.get("passed", True)]


def _label(step: Mapping[str, Any]) -> str:
    journey, name = step.get("journey") or "", step.get("step") or ""
    return f"{journey}/{name}" if journey or name else "overall"


def _slack_escape(text: str) -> str:
    """Slack reads <...> as links and mentions (<!channel>); & < > escaped make them plain text."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
