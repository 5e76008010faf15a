"""Scraping infrastructure metrics during a run: Prometheus text exposition and Docker container stats.

Sources register by URL scheme: `http(s)://...` is a Prometheus endpoint, `docker://NAME` the stats of
a named container (cAdvisor-style metric names). A background thread samples each every interval.
"""

from __future__ import annotations

import datetime as dt
import math
import threading
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from orchestrator.errors import ExitStatus, PerfhouseError

# What the warehouse stores per sample: (ts UTC text, source, metric, labels, value).
InfraRow = tuple[str, str, str, dict[str, str], float]

_SPECIAL = {"NaN": math.nan, "+Inf": math.inf, "-Inf": -math.inf, "Inf": math.inf}
_ESCAPES = {"\\": "\\", '"': '"', "n": "\n"}


@dataclass(frozen=True)
class Sample:
    metric: str
    labels: dict[str, str]
    value: float
    timestamp_ms: int | None = None


class ExpositionError(ValueError):
    """A line of the text exposition format that does not parse; says which and why."""


def parse_exposition(text: str) -> tuple[list[Sample], list[str]]:
    """Samples of a Prometheus text exposition, and one message per line that did not parse.

    Comments (`# HELP`, `# TYPE`, any `#` line) and blank lines are skipped.
    """
    samples: list[Sample] = []
    problems: list[str] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        try:
            samples.append(parse_line(line))
        except ExpositionError as exc:
            problems.append(f"line {number}: {exc}: {line[:120]!r}")
    return samples, problems


def parse_line(line: str) -> Sample:
    i, n = 0, len(line)
    while i < n and (line[i].isalnum() or line[i] in "_:"):
        i += 1
    metric = line[:i]
    if not metric or metric[0].isdigit():
        raise ExpositionError("expected a metric name")
    labels: dict[str, str] = {}
    if i < n and line[i] == "{":
        i += 1
        while True:
            while i < n and line[i] in " \t,":
                i += 1
            if i < n and line[i] == "}":
                i += 1
                break
            start = i
            while i < n and (line[i].isalnum() or line[i] == "_"):
                i += 1
            name = line[start:i]
            while i < n and line[i] in " \t":
                i += 1
            if not name or i + 1 >= n or line[i] != "=" or line[i + 1] != '"':
                raise ExpositionError('expected label="value"')
            i += 2
            value_chars: list[str] = []
            while i < n and line[i] != '"':
                if line[i] == "\\" and i + 1 < n:
                    value_chars.append(_ESCAPES.get(line[i + 1], "\\" + line[i + 1]))
                    i += 2
                else:
                    value_chars.append(line[i])
                    i += 1
            if i >= n:
                raise ExpositionError("unterminated label value")
            i += 1
            labels[name] = "".join(value_chars)
    rest = line[i:].split()
    if not rest or len(rest) > 2:
        raise ExpositionError("expected a value and an optional timestamp")
    try:
        value = _SPECIAL[rest[0]] if rest[0] in _SPECIAL else float(rest[0])
        timestamp = int(rest[1]) if len(rest) == 2 else None
    except ValueError:
        raise ExpositionError(f"not a number: {' '.join(rest)!r}") from None
    return Sample(metric, labels, value, timestamp)


class ScrapeSourceError(PerfhouseError):
    """A --scrape value that names no known kind of source."""

    exit_status = ExitStatus.USAGE


class SourceError(Exception):
    """A source could not be sampled this time; the message says why."""


# A source: given the scrape time, the samples it has now.
Source = Callable[[dt.datetime], list[Sample]]
SOURCES: dict[str, Callable[[str, float], Source]] = {}


def register(*schemes: str) -> Callable[[Callable[[str, float], Source]], Callable[[str, float], Source]]:
    def add(factory: Callable[[str, float], Source]) -> Callable[[str, float], Source]:
        for scheme in schemes:
            SOURCES[scheme] = factory
        return factory

    return add


def source_for(url: str, timeout_s: float) -> Source:
    scheme = urlsplit(url).scheme
    if scheme not in SOURCES:
        raise ScrapeSourceError(f"--scrape {url}: expected http(s)://HOST:PORT/metrics or docker://CONTAINER")
    return SOURCES[scheme](url, timeout_s)


@register("http", "https")
def prometheus(url: str, timeout_s: float) -> Source:
    def sample(now: dt.datetime) -> list[Sample]:
        try:
            with urllib.request.urlopen(url, timeout=timeout_s) as response:
                text = response.read().decode("utf-8", errors="replace")
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise SourceError(str(getattr(exc, "reason", exc))) from None
        samples, bad = parse_exposition(text)
        if bad:
            message = f"{len(bad)} unparsable lines, first {bad[0]}"
            raise _Partial(samples, message) if samples else SourceError(message)
        return samples

    return sample


class _Partial(SourceError):
    """Some samples and a problem to report once."""

    def __init__(self, samples: list[Sample], message: str):
        super().__init__(message)
        self.samples = samples


@register("docker")
def docker_stats(url: str, timeout_s: float) -> Source:
    """Stats of a named container, as cAdvisor names them (CPU seconds and ratio, memory, network)."""
    name = urlsplit(url).netloc or urlsplit(url).path.lstrip("/")
    holder: dict[str, Any] = {}

    def sample(now: dt.datetime) -> list[Sample]:
        import docker
        import docker.errors

        try:
            if "container" not in holder:
                holder["container"] = docker.from_env(timeout=int(timeout_s) + 5).containers.get(name)
            stats = holder["container"].stats(stream=False)
        except docker.errors.DockerException as exc:
            holder.clear()
            raise SourceError(str(getattr(exc, "explanation", None) or exc).splitlines()[0]) from None
        return container_samples(name, stats)

    return sample


def container_samples(name: str, stats: dict[str, Any]) -> list[Sample]:
    """cAdvisor-style samples from one Docker stats document (pure)."""
    labels = {"container": name}
    out: list[Sample] = []
    cpu, pre = stats.get("cpu_stats") or {}, stats.get("precpu_stats") or {}
    total = (cpu.get("cpu_usage") or {}).get("total_usage")
    if total is not None:
        out.append(Sample("container_cpu_usage_seconds_total", labels, total / 1e9))
        pre_total = (pre.get("cpu_usage") or {}).get("total_usage")
        system, pre_system = cpu.get("system_cpu_usage"), pre.get("system_cpu_usage")
        if pre_total is not None and system and pre_system and system > pre_system:
            cpus = cpu.get("online_cpus") or len((cpu.get("cpu_usage") or {}).get("percpu_usage") or [1])
            out.append(Sample("container_cpu_ratio", labels, (total - pre_total) / (system - pre_system) * cpus))
    memory = stats.get("memory_stats") or {}
    if "usage" in memory:
        out.append(Sample("container_memory_usage_bytes", labels, float(memory["usage"])))
    if memory.get("limit"):
        out.append(Sample("container_spec_memory_limit_bytes", labels, float(memory["limit"])))
    for interface, counters in (stats.get("networks") or {}).items():
        net = {**labels, "interface": interface}
        out.append(Sample("container_network_receive_bytes_total", net, float(counters.get("rx_bytes", 0))))
        out.append(Sample("container_network_transmit_bytes_total", net, float(counters.get("tx_bytes", 0))))
    return out


def _ts(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


@dataclass
class Scraper:
    """Fetches every URL each `interval_s` in a background thread while the run goes."""

    urls: tuple[str, ...]
    interval_s: float = 5.0
    timeout_s: float = 5.0
    rows: list[InfraRow] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # at most one message per URL
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __post_init__(self) -> None:
        self._sources = {url: source_for(url, self.timeout_s) for url in self.urls}

    def scrape_once(self) -> None:
        now = dt.datetime.now(dt.UTC)
        for url, source in self._sources.items():
            try:
                samples = source(now)
            except _Partial as exc:
                samples = exc.samples
                self._problem(url, f"scrape {url}: {exc}")
            except SourceError as exc:
                self._problem(url, f"scrape {url}: {exc}")
                continue
            for s in samples:
                at = now if s.timestamp_ms is None else dt.datetime.fromtimestamp(s.timestamp_ms / 1000, dt.UTC)
                self.rows.append((_ts(at), url, s.metric, s.labels, s.value))

    def _problem(self, url: str, message: str) -> None:
        if not any(p.startswith(f"scrape {url}:") for p in self.problems):
            self.problems.append(message)

    def _loop(self) -> None:
        while True:
            self.scrape_once()
            if self._stop.wait(self.interval_s):
                return

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="perfhouse-scrape", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop after a last scrape, so the end of the run is covered too."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.timeout_s * len(self.urls) + 5)
            self.scrape_once()
