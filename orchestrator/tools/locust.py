"""Locust: its probe, locustfile, command line, JSON-lines output (progress counter and live cutter), secrets and
stop. A generated locustfile writes one JSON line per request (--perfhouse-out), which the warehouse loads as one
row per request; Locust's own CSV statistics are kept beside them."""

from __future__ import annotations

import ast
import json
import re
import shutil
import signal
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from orchestrator.errors import GenerationError, SpecError
from orchestrator.tools import (
    WHOLE,
    Counts,
    Invocation,
    Output,
    Request,
    ResultFormat,
    ScriptFacts,
    Segment,
    ThresholdVerdict,
    register,
)

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


# A hand-written locustfile runs beside this one (locust -f RECORDER,LOCUSTFILE), which writes the same lines as a
# generated locustfile for every request: the user's file is run as it is.
RECORDER = Path(__file__).resolve().parent.parent / "locust_recorder.py"
RECORDER_NAME = "perfhouse_locust_recorder.py"
_CLIENT_METHODS = {"get", "post", "put", "patch", "delete", "head", "options", "request", "rest"}


def locust_requests(tree: ast.AST) -> list[Request]:
    """The request call sites of a locustfile in order (`....client.get(url, name=...)` and the other methods;
    `client.request(method, url)`), each under its class: the method, the URL as written, the name given."""
    out: list[Request] = []

    def visit(node: ast.AST, scope: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.ClassDef):
                visit(child, child.name)
                continue
            if (isinstance(child, ast.Call) and isinstance(child.func, ast.Attribute)
                    and child.func.attr in _CLIENT_METHODS and _is_client(child.func.value)):
                args = list(child.args)
                method = child.func.attr.upper()
                if child.func.attr in ("request", "rest") and args:
                    first = args.pop(0)
                    method = first.value.upper() if isinstance(first, ast.Constant) and isinstance(
                        first.value, str) else ast.unparse(first)
                url = ast.unparse(args[0]) if args else ""
                name = next((ast.unparse(k.value) for k in child.keywords if k.arg == "name"), "")
                out.append(Request(scope, name or url, method, url))
            visit(child, scope)

    visit(tree, "")
    return out


def _is_client(node: ast.AST) -> bool:
    return (isinstance(node, ast.Attribute) and node.attr in ("client", "rest_client")) or (
        isinstance(node, ast.Name) and node.id == "client")


@register
class Locust:
    name: ClassVar[str] = "locust"
    display_name: ClassVar[str] = "Locust"
    script_version: ClassVar[str] = ""
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

    script_suffixes: ClassVar[tuple[str, ...]] = (".py",)
    variable_flag: ClassVar[str] = "-e"

    def owns_script(self, text: str) -> bool:
        return re.search(r"^\s*(from\s+locust[\s.]|import\s+locust\b)", text, re.MULTILINE) is not None

    def script_facts(self, text: str, file: str) -> ScriptFacts:
        try:
            tree = ast.parse(text, filename=file)
        except SyntaxError as exc:
            raise SpecError(f"not valid Python: {exc.msg}", file, exc.lineno or 0, exc.offset or 0) from None
        strings = [n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)]
        # locust.conf beside it sets users, spawn rate and run time as Locust users know (read from the run directory)
        return ScriptFacts(tuple(locust_requests(tree)), tuple(dict.fromkeys([*strings, "locust.conf"])))

    def script_variables(self, values: Mapping[str, str]) -> tuple[dict[str, str], bytes | None]:
        return dict(values), None  # os.environ in the locustfile (and LOCUST_USERS, LOCUST_RUN_TIME, ...)

    def script_invocation(self, binary: str, script: Path, outdir: Path, segment: Segment = WHOLE) -> Invocation:
        recorder = outdir / RECORDER_NAME
        recorder.write_bytes(RECORDER.read_bytes())
        invocation = self.invocation(binary, script, outdir, segment)
        argv = list(invocation.argv)
        argv[argv.index("-f") + 1] = f"{recorder},{script}"
        return Invocation(argv, invocation.outputs, invocation.summary)

    def scale_script(self, text: str, segment: Segment, variables: Mapping[str, str]) -> str | None:
        raise GenerationError("Locust cannot split one test over several generators (it has no execution "
                              "segments); run a locustfile with --generators 1")

    def script_verdicts(self, summary: Path) -> list[ThresholdVerdict]:
        return []

    def stopped_early(self, console: str) -> str:
        return ""  # its generated scripts cannot stop on an SLO (abort_on_fail fails their generation)
