"""Locust: its probe, locustfile, command line, JSON-lines output (progress counter and live cutter), secrets and
stop. A generated locustfile writes one JSON line per request (--perfhouse-out), which the warehouse loads as one
row per request; Locust's own CSV statistics are kept beside them."""

from __future__ import annotations

import json
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


class LocustLinesCounter:
    """The generated locustfile's lines: one per request, `ok` false is an error, `duration_ms` the duration,
    `users` Locust's count of running users."""

    def __init__(self) -> None:
        self.vus: int | None = None

    def feed(self, lines: list[bytes], counts: Counts) -> None:
        for line in lines:
            try:
                doc = json.loads(line)
            except ValueError:
                continue
            if not isinstance(doc, dict):
                continue
            counts.requests += 1
            counts.errors += doc.get("ok") is False
            if isinstance(duration := doc.get("duration_ms"), int | float):
                counts.durations.append(float(duration))
            if isinstance(users := doc.get("users"), int):
                self.vus = users


class LocustLinesCutter:
    """One request per line: any complete line ends a safe chunk."""

    def header(self, data: bytes) -> int:
        return 0

    def cut(self, data: bytes, final: bool) -> int:
        return len(data) if final else data.rfind(b"\n") + 1

    def worth_ingesting(self, chunk: bytes) -> bool:
        return bool(chunk.strip())


LOCUST_JSONL = ResultFormat("locust-jsonl", LocustLinesCounter, LocustLinesCutter)


@register
class Locust:
    name: ClassVar[str] = "locust"
    script_suffix: ClassVar[str] = ".py"
    version_args: ClassVar[tuple[str, ...]] = ("--version",)
    stop_signal: ClassVar[int] = signal.SIGTERM  # headless Locust stops its users and writes its statistics
    splits: ClassVar[bool] = False
    scaled_scripts: ClassVar[bool] = False
    runners: ClassVar[frozenset[str]] = frozenset({"local", "docker"})
    default_image: ClassVar[str] = "locustio/locust:latest"
    install_hint: ClassVar[str] = "install it with `pip install 'perfhouse[locust]'` (or `pip install locust`)"

    def binary(self) -> str | None:
        return shutil.which("locust")

    def version(self, binary: str) -> str:
        proc = subprocess.run([binary, *self.version_args], capture_output=True, text=True, timeout=60)
        return self.parse_version(proc.stdout + proc.stderr)

    def parse_version(self, output: str) -> str:
        m = re.search(r"locust (\d+\.\d+(?:\.\d+)?)", output)
        return m.group(1) if m else output.strip()[:40]

    def render(self, spec: Spec, options: GenerationOptions) -> GeneratedScript:
        from orchestrator.generators.locust import LocustGenerator

        return LocustGenerator().render(spec, options)

    def for_version(self, options: GenerationOptions, version: str) -> GenerationOptions:
        return options

    def invocation(self, binary: str, script: Path, outdir: Path, segment: Segment = WHOLE) -> Invocation:
        results = outdir / f"locust{segment.suffix}.jsonl"
        argv = [
            binary,
            "-f",
            str(script),
            "--headless",
            "--perfhouse-out",
            str(results),
            "--csv",  # Locust's own statistics, kept beside the run
            str(outdir / f"locust{segment.suffix}"),
            "--csv-full-history",
            "--exit-code-on-error",  # failed requests are results, not a failure of the run
            "0",
            "--loglevel",
            "WARNING",
        ]
        return Invocation(argv, [Output(results, LOCUST_JSONL, segment.name)])

    def secret_file(self, values: Mapping[str, str]) -> bytes | None:
        return None  # the locustfile reads ${env:NAME} from os.environ, which the runner's environment fills

    def secret_args(self, path: Path) -> list[str]:
        return []

    def completed(self, exit_code: int) -> bool:
        return exit_code == 0

    def stopped_early(self, console: str) -> str:
        return ""  # its generated scripts cannot stop on an SLO (abort_on_fail fails their generation)
