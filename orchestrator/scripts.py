"""Scripts a team already owns (a k6 script, a JMeter plan, a locustfile) as perfhouse runs them: which tool's it
is, what it requests (its fingerprint), the files it opens, its variables and its SLOs.

A script becomes a `Spec` without journeys whose `script` says what to run, so that a run of it goes through the
same orchestration as a spec's (runners, generators, live ingest, scraping, watchdog, gate, baselines). What a
tool knows of its own scripts lives in its module (orchestrator.tools); nothing here names a tool.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from orchestrator.errors import ExitStatus, PerfhouseError, SpecError, ToolMissingError
from orchestrator.spec import SLO, Profile, Spec, _compose, _Reader, _slo
from orchestrator.tools import TOOLS, Tool, script_suffixes, script_tool
from orchestrator.userscript import UserScript

SPEC_SUFFIXES = (".yaml", ".yml", ".json")  # specs and suites (YAML; JSON is YAML too)
PROFILE = "script"  # the profile name a script's runs record: the script sets its own load
SIDECAR_SUFFIX = ".slo.yaml"  # shop.js's SLOs may sit beside it in shop.slo.yaml
MAX_REFERENCED_BYTES = 512 << 20  # a referenced file larger than this is not copied (and said so)


class ScriptKindError(PerfhouseError):
    """A file given to `run` that is neither a spec nor a script of a tool perfhouse knows."""

    exit_status = ExitStatus.USAGE


def is_script(path: Path) -> bool:
    """Is this file meant as a script (by its suffix) rather than a spec or suite?"""
    return path.suffix.lower() in script_suffixes()


def tool_of(path: Path, text: str) -> Tool:
    """The tool whose script the file is; a file of no known kind is a one-line usage error."""
    tool = script_tool(path.suffix, text)
    if tool is None:
        kinds = ", ".join(f"{' '.join(t.script_suffixes)} ({t.name})" for t in TOOLS.values())
        raise ScriptKindError(f"{path}: not a script perfhouse can run (it runs specs .yaml and scripts: {kinds})")
    return tool


def read_script(path: Path) -> tuple[Tool, str, bytes]:
    try:
        content = path.read_bytes()
    except OSError as exc:
        raise ScriptKindError(f"{path}: cannot read it: {exc.strerror}") from None
    text = content.decode("utf-8", errors="replace")
    return tool_of(path, text), text, content


def referenced_files(directory: Path, candidates: Iterable[str], script: Path) -> list[Path]:
    """The candidates that name a file inside `directory` (relative to it, without leaving it), other than the
    script itself: what the script may open, copied beside it into the run directory."""
    base = directory.resolve()
    out: list[Path] = []
    for text in candidates:
        text = text.strip()
        if not text or len(text) > 1024 or "\0" in text or "\n" in text or re.match(r"^[A-Za-z][\w+.-]*:", text):
            continue
        relative = Path(text.removeprefix("./"))
        if relative.is_absolute() or ".." in relative.parts:
            continue
        try:
            resolved = (base / relative).resolve()
            if not resolved.is_relative_to(base) or resolved == script.resolve() or not resolved.is_file():
                continue
        except (OSError, ValueError):
            continue
        if relative not in out:
            out.append(relative)
    return out


def load_script(file: str | Path, variables: Mapping[str, Mapping[str, str]] | None = None,
                slos: Iterable[str] = (), slo_file: str | Path | None = None) -> Spec:
    """A hand-written script as a Spec to run: `variables` by flag (-e, -J; each tool takes its own), SLOs from
    `slos` (the --slo grammar: see parse_slo) and the sidecar file (`slo_file`, else NAME.slo.yaml beside it)."""
    path = Path(file).absolute()
    tool, text, content = read_script(path)
    facts = tool.script_facts(text, str(path))
    files = referenced_files(path.parent, facts.references, path)
    notes = []
    for relative in list(files):
        if (path.parent / relative).stat().st_size > MAX_REFERENCED_BYTES:
            files.remove(relative)
            notes.append(f"{relative} is larger than {MAX_REFERENCED_BYTES >> 20} MiB: not copied beside the script")
    sidecar = Path(slo_file) if slo_file else path.with_name(path.name.rsplit(".", 1)[0] + SIDECAR_SUFFIX)
    objectives = [*(load_slo_file(sidecar) if slo_file or sidecar.is_file() else []),
                  *(parse_slo(s) for s in slos)]
    script = UserScript(path, tool.name, content, facts.requests, tuple(files),
                        dict((variables or {}).get(tool.variable_flag, {})), tuple(notes))
    return Spec(name=path.stem, file=str(path), services={}, variables={}, headers=(), journeys=(),
                profiles={PROFILE: Profile(PROFILE, PROFILE)}, slos=tuple(objectives),
                source_hash=hashlib.sha256(content).hexdigest(), script=script)


def check_tools(specs: list[Spec]) -> None:
    """Every script's tool is installed (one line, exit 5, naming the script, when one is not)."""
    for spec in specs:
        if spec.script is not None and TOOLS[spec.script.tool].binary() is None:
            tool = TOOLS[spec.script.tool]
            raise ToolMissingError(f"{spec.file} is a {tool.name} script, and {tool.name} is not installed (not found "
                                   f"on PATH): {tool.install_hint}")


# -- SLOs -----------------------------------------------------------------------------------------------------

_SLO_TEXT = re.compile(r"^(?:(?P<scope>.*):)?\s*(?P<metric>[A-Za-z_][A-Za-z0-9_.]*)\s*(?P<op><|>)\s*(?P<value>\S+)\s*$")


def parse_slo(text: str, where: str = "--slo") -> SLO:
    """`[STEP:]METRIC<THRESHOLD` (`throughput>N`): p95<500 (ms; or 0.5s), checkout:p99<800, error_rate<1%,
    throughput>50. The metric and threshold are read as a spec's slos read them; STEP is a step as results name
    it (a k6 name tag or URL, a JMeter sampler label, a Locust request name), in any journey."""
    m = _SLO_TEXT.match(text)
    if m is None:
        raise SpecError(f"expected [STEP:]METRIC<THRESHOLD like p95<500 or checkout:error_rate<1%, found {text!r}",
                        where)
    metric, op, value = m["metric"], m["op"], m["value"]
    if (op == ">") != (metric == "throughput"):
        raise SpecError(f"{metric} {'must reach' if metric == 'throughput' else 'must stay below'} its threshold: "
                        f"write {metric}{'>' if metric == 'throughput' else '<'}{value}", where)
    if re.fullmatch(r"\d+(\.\d+)?", value) and metric not in ("error_rate", "check_failure_rate", "throughput"):
        value += "ms"  # a bare latency is in milliseconds, as k6 thresholds write them
    slo = _slo(_Reader(where, {"slo": (0, 0)}), {"metric": metric, "threshold": value}, "slo", [], {})
    return _scoped(slo, "", (m["scope"] or "").strip(), where)


def load_slo_file(path: Path) -> list[SLO]:
    """A sidecar of SLOs: `slos:`, a list of `[STEP:]METRIC<THRESHOLD` texts or of a spec's SLO mappings (metric,
    threshold, journey, step, service, abort_on_fail) with journey and step as results name them."""
    file = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(f"cannot read the SLO file: {getattr(exc, 'strerror', None) or exc}", file) from None
    data, positions = _compose(text, file)
    r = _Reader(file, positions)
    top = r.mapping(data, "", ("slos",), required=("slos",))
    if not isinstance(top["slos"], list):
        raise r.fail("slos", "expected a list of SLOs")
    out = []
    for i, raw in enumerate(top["slos"]):
        at = f"slos[{i}]"
        if isinstance(raw, str):
            line, column = positions.get(at, (0, 0))
            where = f"{file}:{line}:{column}: {at}" if line else f"{file}: {at}"
            out.append(parse_slo(raw, where))
            continue
        entry = r.mapping(raw, at, ("metric", "threshold", "journey", "step", "service", "abort_on_fail"),
                          required=("metric", "threshold"))
        scope = {k: r.string(entry[k], f"{at}.{k}") for k in ("journey", "step", "service") if k in entry}
        slo = _slo(r, {k: v for k, v in entry.items() if k not in scope}, at, [], {})
        out.append(replace(_scoped(slo, scope.get("journey", ""), scope.get("step", ""), file),
                           service=scope.get("service", "")))
    return out


def _scoped(slo: SLO, journey: str, step: str, where: str) -> SLO:
    for value in (journey, step):
        if value and ("," in value or value[0] in "\"'" or value[-1] in "\"'"):
            raise SpecError(f"an SLO cannot select {value!r}: k6 thresholds cannot hold a comma, or a quote at "
                            "either end, in a tag value", where)
    return replace(slo, journey=journey, step=step)


def redacted(values: Mapping[str, Mapping[str, str]]) -> dict[str, Any]:
    """The variables as a run records them: names only."""
    return {flag: {name: "***" for name in sorted(named)} for flag, named in values.items() if named}
