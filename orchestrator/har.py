"""HAR import: a browser recording becomes a starter journey spec (one journey, one step per call)."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from orchestrator.errors import SpecError

STATIC = re.compile(r"\.(js|mjs|css|png|jpe?g|gif|svg|ico|webp|avif|woff2?|ttf|eot|map)$", re.I)
STATIC_TYPES = ("image/", "font/", "text/css", "application/javascript", "text/javascript")
# Headers the tools or the browser set themselves, or that carry one session's state.
DROP_HEADERS = {"host", "connection", "content-length", "accept-encoding", "cookie", "user-agent", "referer",
                "origin", "pragma", "cache-control", "upgrade-insecure-requests", "te", "priority", "dnt",
                "if-none-match", "if-modified-since", "keep-alive", "transfer-encoding"}
MAX_THINK_S = 10.0


def _service_name(host: str, taken: dict[str, str]) -> str:
    hostname = host.split(":")[0]
    is_local = hostname == "localhost" or re.fullmatch(r"[0-9.]+|\[[0-9a-fA-F:]+\]", hostname) is not None
    label = "app" if is_local else re.sub(r"[^A-Za-z0-9_]", "_", hostname.split(".")[0]) or "service"
    name, n = label, 2
    while name in taken.values():
        name, n = f"{label}_{n}", n + 1
    return name


def _step_name(method: str, path: str, taken: set[str]) -> str:
    slug = re.sub(r"[^A-Za-z0-9]+", "_", path.strip("/")).strip("_").lower()[:40] or "root"
    base = f"{method.lower()}_{slug}"
    name, n = base, 2
    while name in taken:
        name, n = f"{base}_{n}", n + 1
    taken.add(name)
    return name


def _literal(text: str) -> str:
    return text.replace("$", "$$")


def _started(entry: dict[str, Any]) -> dt.datetime | None:
    try:
        return dt.datetime.fromisoformat(str(entry.get("startedDateTime", "")).replace("Z", "+00:00"))
    except ValueError:
        return None


def har_to_spec(har: dict[str, Any], name: str, file: str = "<har>") -> dict[str, Any]:
    """The spec document for a HAR recording (static assets and browser-managed headers left out)."""
    try:
        entries = list(har["log"]["entries"])
    except (KeyError, TypeError):
        raise SpecError("not a HAR file: expected log.entries", file) from None
    services: dict[str, str] = {}  # base URL -> service name
    steps: list[dict[str, Any]] = []
    taken: set[str] = set()
    previous: dt.datetime | None = None
    for i, entry in enumerate(entries):
        request, response = entry.get("request", {}), entry.get("response", {})
        url = urlsplit(str(request.get("url", "")))
        mime = str(response.get("content", {}).get("mimeType", ""))
        if url.scheme not in ("http", "https") or STATIC.search(url.path) or mime.startswith(STATIC_TYPES):
            continue
        base = f"{url.scheme}://{url.netloc}"
        service = services.setdefault(base, _service_name(url.netloc, services))
        method = str(request.get("method", "GET")).upper()
        step: dict[str, Any] = {"name": _step_name(method, url.path, taken), "service": service,
                                "method": method, "path": _literal(url.path or "/")}
        query = {str(q["name"]): _literal(str(q.get("value", ""))) for q in request.get("queryString", [])}
        if query:
            step["query"] = query
        headers = {str(h["name"]): _literal(str(h.get("value", ""))) for h in request.get("headers", [])
                   if not str(h["name"]).startswith(":") and str(h["name"]).lower() not in DROP_HEADERS
                   and str(h["name"]).lower() != "content-type"}
        if headers:
            step["headers"] = headers
        post = request.get("postData")
        if post:
            ctype = str(post.get("mimeType", "")).split(";")[0].strip()
            text = str(post.get("text", ""))
            if ctype == "application/json":
                try:
                    step["body"] = {"json": _literal_json(json.loads(text))}
                except ValueError:
                    step["body"] = {"raw": _literal(text), "content_type": ctype}
            elif ctype == "application/x-www-form-urlencoded" and post.get("params") is not None:
                step["body"] = {"form": {str(p["name"]): _literal(str(p.get("value", ""))) for p in post["params"]}}
            else:
                step["body"] = {"raw": _literal(text), "content_type": ctype or "text/plain"}
        status = int(response.get("status") or 0)
        if 100 <= status < 600:
            step["checks"] = [{"status": status}]
            if status >= 400:  # the recording shows the server answering so: not a request error on replay
                step["expected_statuses"] = status
        started = _started(entry)
        if previous is not None and started is not None and steps:
            gap = (started - previous).total_seconds() - float(entries[i - 1].get("time") or 0) / 1000
            if gap >= 0.05:
                steps[-1]["think_time"] = f"{round(min(gap, MAX_THINK_S), 2):g}s"
        previous = started or previous
        steps.append(step)
    if not steps:
        raise SpecError("the HAR holds no API calls (only static assets or nothing)", file)
    return {
        "name": name,
        "services": {svc: base for base, svc in services.items()},
        "journeys": [{"name": "recorded", "steps": steps}],
        "profiles": {"smoke": {"preset": "smoke"}, "ci": {"executor": "constant_vus", "vus": 5, "duration": "1m"}},
        "slos": [{"metric": "p95", "threshold": "1s"}, {"metric": "error_rate", "threshold": "1%"}],
    }


def _literal_json(value: Any) -> Any:
    if isinstance(value, str):
        return _literal(value)
    if isinstance(value, dict):
        return {k: _literal_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_literal_json(v) for v in value]
    return value


def import_har(path: Path, name: str) -> str:
    """The YAML text of a starter spec for the HAR file at `path`."""
    try:
        har = json.loads(Path(path).read_text(encoding="utf-8-sig"))
    except (OSError, ValueError) as exc:
        raise SpecError(f"cannot read the HAR: {exc}", str(path)) from None
    doc = har_to_spec(har, name, str(path))
    header = (f"# Journey spec imported by perfhouse from {Path(path).name}.\n"
              "# Review it: add extraction for values the server issues (tokens, ids) and use ${name} in later\n"
              "# steps, move secrets to variables, and adjust think times, checks, profiles and SLOs.\n")
    return header + yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, width=110)
