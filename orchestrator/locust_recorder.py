"""Loaded by Locust beside a hand-written locustfile (`locust -f perfhouse_locust_recorder.py,theirs.py`): every
request becomes one JSON line of the same fields a generated locustfile writes, which the warehouse loads as one row
per request under the request's name. perfhouse copies this file into the run directory; it never imports it."""

import csv
import json
import time
from typing import Any, TextIO

from locust import events
from locust.stats import PERCENTILES_TO_REPORT, StatsCSV


@events.init_command_line_parser.add_listener
def _options(parser, **kwargs):
    parser.add_argument("--perfhouse-out", default="locust-requests.jsonl", help="File of one JSON line per request")


OUT: list[TextIO] = []
RUNNER: list[Any] = []


@events.test_start.add_listener
def _open(environment, **kwargs):
    OUT.append(open(environment.parsed_options.perfhouse_out, "a", encoding="utf-8", buffering=1))  # noqa: SIM115
    RUNNER.append(environment.runner)


@events.test_stop.add_listener
def _close(environment, **kwargs):
    while OUT:
        OUT.pop().close()


# Locust rewrites PREFIX_stats.csv (--csv) every second while it runs: once the users have stopped, it is written
# again with Locust's final figures, which then count every request written above.
@events.quit.add_listener
def _final_statistics(exit_code, **kwargs):
    environment: Any = RUNNER[0].environment if RUNNER and RUNNER[0] is not None else None
    prefix = getattr(environment.parsed_options, "csv_prefix", None) if environment is not None else None
    if prefix:
        with open(prefix + "_stats.csv", "w", newline="", encoding="utf-8") as fh:
            StatsCSV(environment, PERCENTILES_TO_REPORT).requests_csv(csv.writer(fh))


@events.request.add_listener
def _record(request_type, name, response_time, response_length, response=None, context=None, exception=None,
            start_time=None, url=None, **kwargs):
    if not OUT:
        return
    context = context if isinstance(context, dict) else {}
    status = getattr(response, "status_code", 0) or 0
    line = {
        "tool": "locust",
        "ts": start_time if start_time is not None else time.time() - response_time / 1000,
        "journey": str(context.get("journey", "")),
        "step": name,
        "method": request_type,
        "url": url or name,
        "status": status,
        "ok": exception is None,
        "duration_ms": response_time,
        "bytes_received": response_length or 0,
        "error": "" if exception is None else str(exception)[:500],
        "vu": str(context.get("vu", "")),
        "users": RUNNER[0].user_count if RUNNER and RUNNER[0] is not None else 0,
    }
    OUT[0].write(json.dumps(line) + "\n")
