"""The Docker runner: each part of a job in its own container (docker SDK), always removed afterwards.

The run directory is bind-mounted at the same absolute path inside the container and is its working
directory, so the tool's argv (whose paths all lie in that directory) stays valid unchanged; the
image's entrypoint is the tool (grafana/k6: `k6`, justb4/jmeter: `jmeter`). Containers carry the label
`perfhouse.run=<run id>` so leftovers of a killed orchestrator can be found and removed (`cleanup`), and
`perfhouse.owner=<host:pid:start>` naming the perfhouse that started them: the run's watchdog removes them
when that perfhouse dies, and `cleanup` removes those of a dead owner without being told the run.

With `--docker-host URL` (repeatable) the parts are spread over those engines in turn, wherever they run.
An engine need not share this host's files, so nothing is mounted there: the run directory (script, test
data) is copied into each container at the same path through the engine's archive API before it starts,
and the files the tool wrote there (its results) are copied back the same way once it has stopped, so
ingestion reads them as it reads a local run's.
"""

from __future__ import annotations

import contextlib
import io
import os
import signal
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, ClassVar

from orchestrator.errors import PerfhouseError, ToolMissingError
from orchestrator.runners.base import (
    Execution,
    Job,
    Part,
    RunnerOptions,
    StopRequest,
    Target,
    register,
    supervise,
)
from orchestrator.tools import Tool
from warehouse.engine.owners import OWNER_LABEL, Owner, me

RUN_LABEL = "perfhouse.run"
PART_LABEL = "perfhouse.generator"
TOOL_LABEL = "perfhouse.tool"
POLL_S = 0.3  # each tick asks the engine for every container's state
CLEANUP_STOP_S = 3  # seconds a leftover container gets to stop before it is killed
_ACTIVE = ("running", "restarting", "paused")  # states `cleanup` stops before removing


class DockerUnavailableError(PerfhouseError):
    """The Docker engine cannot be reached or refused a request."""


def client(fix: str = "start it or use --runner local") -> Any:
    import docker
    import docker.errors

    try:
        c = docker.from_env(timeout=120)
        c.ping()
    except docker.errors.DockerException as exc:
        raise DockerUnavailableError(f"the Docker engine is not reachable ({_first_line(exc)}); {fix}") from None
    return c


def client_at(url: str) -> Any:
    """A client of the engine at `url` (unix:///path/docker.sock, tcp://host:2375, ssh://user@host)."""
    import docker
    import docker.errors

    try:
        c = docker.DockerClient(base_url=url, timeout=120)
        c.ping()
    except docker.errors.DockerException as exc:
        raise DockerUnavailableError(f"the Docker engine at {url} is not reachable ({_first_line(exc)})") from None
    return c


def engines(options: RunnerOptions) -> list[Any]:
    """The engines a job's parts run on: each --docker-host, else the one of the environment (DOCKER_HOST)."""
    return [client_at(url) for url in options.docker_hosts] if options.docker_hosts else [client()]


def ensure_image(docker_client: Any, image: str, tool: str) -> None:
    """Use the image if it is present, else pull it; a missing image is a one-line error naming the fix."""
    import docker.errors

    try:
        docker_client.images.get(image)
        return
    except docker.errors.ImageNotFound:
        pass
    try:
        docker_client.images.pull(image)
    except docker.errors.DockerException as exc:
        flag = f"--{tool}-image"
        raise ToolMissingError(
            f"image {image} is not present and cannot be pulled ({_first_line(exc)}); "
            f"choose another with {flag} or ${'PERFHOUSE_' + tool.upper() + '_IMAGE'}"
        ) from None


def leftovers(run_id: str | None = None, docker_client: Any = None) -> list[Any]:
    """Containers perfhouse started (of one run, or of any) that still exist."""
    label = RUN_LABEL if run_id is None else f"{RUN_LABEL}={run_id}"
    containers = (docker_client or client()).containers
    return list(containers.list(all=True, filters={"label": label}, ignore_removed=True))


@dataclass(frozen=True)
class Leftover:
    """A container perfhouse left behind, and what `cleanup` did with it."""

    id: str  # short id
    name: str
    run_id: str
    tool: str | None
    generator: str | None
    state: str  # the engine's: created, running, exited, paused, ...
    action: str  # "stopped and removed", "removed", "would ..." (dry run), "already gone", "failed: ...", "listed"
    owner: str = "unknown"  # the perfhouse that started it: "alive", "dead" or "unknown" (no label, another host)

    @property
    def failed(self) -> bool:
        return self.action.startswith("failed")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def owner_state(labels: dict[str, str]) -> str:
    """Is the perfhouse that started a container alive ("alive", "dead"), or can it not be told ("unknown")?"""
    owner = Owner.parse(labels.get(OWNER_LABEL, ""))
    alive = owner.alive() if owner is not None else None
    return "unknown" if alive is None else "alive" if alive else "dead"


def cleanup(run_id: str | None = None, dry_run: bool = False, stop_s: int = CLEANUP_STOP_S,
            dead_only: bool = False, hosts: tuple[str, ...] = ()) -> list[Leftover]:
    """Stop (`stop_s` seconds, then kill) and remove the containers of one run or of every run; a dry run lists.

    `dead_only`: only the containers whose perfhouse died; the others are listed. Otherwise the containers
    of a run still going are removed too (the user names the run, or asks for all). `hosts`: the engines to
    clean (the --docker-host URLs the runs used), else the one of the environment."""
    import docker.errors

    clients = [client_at(url) for url in hosts] if hosts else [client(fix="start it or set DOCKER_HOST")]
    found: dict[str, Any] = {}
    for docker_client in clients:
        try:
            for container in leftovers(run_id, docker_client):
                found.setdefault(container.id, container)  # one engine named twice lists its containers once
        except docker.errors.DockerException as exc:
            raise DockerUnavailableError(f"docker: listing containers: {_first_line(exc)}") from None
    return [_clean(container, dry_run, stop_s, dead_only) for container in found.values()]


def dead_leftovers(timeout_s: float = 5.0) -> list[Leftover]:
    """The containers of runs whose perfhouse died, as listed by `cleanup`; [] when Docker cannot be asked.

    Every local run asks this: an engine on its local socket is asked directly (one request, without loading the
    docker SDK); one elsewhere (DOCKER_HOST tcp://, ssh://) through the SDK."""
    try:
        found = _listed_on_socket(timeout_s)
        if found is None:
            import docker

            found = leftovers(None, docker.from_env(timeout=timeout_s))
    except Exception:  # no SDK or no engine here: nothing to say about containers
        return []
    return [_clean(c, True, 0) for c in found if owner_state(c.labels or {}) == "dead"]


DEFAULT_SOCKET = "/var/run/docker.sock"


@dataclass(frozen=True)
class _Listed:
    """A container as the engine lists it, with the attributes `_clean` reads of the SDK's (for a dry run)."""

    id: str
    name: str
    status: str
    labels: dict[str, str]

    @property
    def short_id(self) -> str:
        return self.id[:12]


def _listed_on_socket(timeout_s: float) -> list[_Listed] | None:
    """perfhouse's containers as the engine on the local socket (DOCKER_HOST unset or unix://) lists them, through
    the engine's HTTP API; None for an engine elsewhere. An engine that is not there raises OSError."""
    import http.client
    import json
    import socket
    from urllib.parse import quote

    host = os.environ.get("DOCKER_HOST", "")
    if host and not host.startswith("unix://"):
        return None
    path = host.removeprefix("unix://") or DEFAULT_SOCKET

    class Connection(http.client.HTTPConnection):
        def connect(self) -> None:
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.settimeout(timeout_s)
            self.sock.connect(path)

    conn = Connection("localhost", timeout=timeout_s)
    try:
        filters = quote(json.dumps({"label": [RUN_LABEL]}))
        conn.request("GET", f"/containers/json?all=1&filters={filters}")
        response = conn.getresponse()
        body = response.read(16 << 20)
    finally:
        conn.close()
    if response.status != 200:
        raise OSError(f"the Docker engine answered {response.status}")
    return [_Listed(str(c["Id"]), str((c.get("Names") or [""])[0]).lstrip("/"), str(c.get("State", "")),
                    dict(c.get("Labels") or {})) for c in json.loads(body)]


def _clean(container: Any, dry_run: bool, stop_s: int, dead_only: bool = False) -> Leftover:
    labels = container.labels or {}
    state = str(container.status)
    active = state in _ACTIVE
    owner = owner_state(labels)
    if dead_only and owner != "dead":
        action = "listed"
    elif dry_run:
        action = "would stop and remove" if active else "would remove"
    else:
        import docker.errors  # what is only listed needs none of the SDK

        try:
            if active:
                container.stop(timeout=stop_s)
            container.remove(force=True)  # force: one that ignored the stop is killed
            action = "stopped and removed" if active else "removed"
        except docker.errors.NotFound:
            action = "already gone"
        except docker.errors.DockerException as exc:
            action = f"failed: {_first_line(exc)}"
    return Leftover(
        id=str(container.short_id),
        name=str(container.name),
        run_id=str(labels.get(RUN_LABEL, "")),
        tool=labels.get(TOOL_LABEL),
        generator=labels.get(PART_LABEL),
        state=state,
        action=action,
        owner=owner,
    )


@register
class DockerRunner:
    name: ClassVar[str] = "docker"
    on_this_host: ClassVar[bool] = True
    inherits_fds: ClassVar[bool] = False

    def __init__(self) -> None:
        self._versions: dict[tuple[str, str], str] = {}

    def target(self, tool: Tool, options: RunnerOptions) -> Target:
        image = options.image(tool.name)
        key = (tool.name, image)
        if key not in self._versions:
            clients = engines(options)
            for docker_client in clients:
                ensure_image(docker_client, image, tool.name)
            self._versions[key] = tool.parse_version(_probe(clients[0], image, tool, options))
        return Target(image, self._versions[key])

    def execute(self, job: Job) -> Execution:
        import docker.errors

        clients = engines(job.options)
        remote = bool(job.options.docker_hosts)  # the run directory is copied in and out, not mounted
        image = job.options.image(job.tool.name)
        started = time.monotonic()
        containers: list[Any] = []
        streams: list[threading.Thread] = []
        codes: list[int] = []
        with StopRequest().on_signals() as stop_request:
            try:
                for index, part in enumerate(job.parts):
                    docker_client = clients[index % len(clients)]
                    container = docker_client.containers.create(image, **_create_args(job, part, mount=not remote))
                    containers.append(container)
                    if job.watchdog is not None:  # it holds the secrets in its environment: never outlive us
                        job.watchdog.guard_container(str(container.id))
                    if remote:
                        container.put_archive("/", _directory_tar(job.directory))
                for container, part in zip(containers, job.parts, strict=True):
                    container.start()
                    streams.append(_stream_logs(container, part.log))
                state = _States(containers)
                interrupted, timed_out = supervise(
                    job,
                    alive=state.any_running,
                    stop=lambda: _signal_all(containers, job.tool.stop_signal),
                    kill=lambda: _signal_all(containers, signal.SIGKILL),
                    stop_request=stop_request,
                    started=started,
                    clock=time.monotonic,
                    sleep=lambda _: time.sleep(POLL_S),
                )
                for container in containers:
                    codes.append(_exit_code(container))
            except docker.errors.DockerException as exc:
                raise DockerUnavailableError(f"docker: {_first_line(exc)}") from None
            finally:
                if remote:
                    for container in containers:
                        _fetch_results(container, job.directory)
                _remove_all(containers, streams)
                if job.watchdog is not None:
                    for container in containers:
                        job.watchdog.forget_container(str(container.id))
        return Execution(
            tuple(codes), interrupted, timed_out, tuple(p.log for p in job.parts), time.monotonic() - started
        )


def _probe(docker_client: Any, image: str, tool: Tool, options: RunnerOptions) -> str:
    """The tool's version output from a short-lived container, removed even when interrupted."""
    import docker.errors

    container = docker_client.containers.create(
        image, list(tool.version_args), network_mode=options.network_mode, labels={RUN_LABEL: "version-probe"}
    )
    try:
        container.start()
        container.wait(timeout=120)
        return bytes(container.logs(stdout=True, stderr=True)).decode(errors="replace")
    except docker.errors.DockerException as exc:
        raise DockerUnavailableError(f"docker: {image} {' '.join(tool.version_args)}: {_first_line(exc)}") from None
    finally:
        with contextlib.suppress(docker.errors.DockerException):
            container.remove(force=True)


def _create_args(job: Job, part: Part, mount: bool = True) -> dict[str, Any]:
    directory = str(job.directory)
    opts = job.options
    args: dict[str, Any] = {
        "command": part.argv[1:],
        "name": f"perfhouse-{job.run_id}{'-' + part.generator if part.generator else ''}",
        "labels": {RUN_LABEL: job.run_id, PART_LABEL: part.generator or "g1", TOOL_LABEL: job.tool.name,
                   OWNER_LABEL: me().token},
        "network_mode": opts.network_mode,
        "volumes": {directory: {"bind": directory, "mode": "rw"}} if mount else {},
        "working_dir": directory,
        "user": opts.user if opts.user is not None else f"{os.getuid()}:{os.getgid()}",
        # JVM and k6 want a writable home (the image's may not be); k6 reads ${env:NAME} from __ENV
        "environment": {**job.env, "HOME": directory},
        "stdin_open": False,
        "tty": False,
    }
    if opts.cpus:
        args["nano_cpus"] = int(opts.cpus * 1e9)
    if opts.memory:
        args["mem_limit"] = opts.memory
    return args


def _directory_tar(directory: Path) -> bytes:
    """The run directory's files (not its subdirectories) as a tar of their absolute paths, for put_archive at /.

    The directory itself is an entry, owned by the invoking user and writable, so the tool (running as that
    user) can write its results beside the script; the directories above it are not in the tar, and an
    engine creates those it lacks."""
    import tarfile  # a remote engine's run only

    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        top = tarfile.TarInfo(str(directory).lstrip("/"))
        top.type, top.mode, top.uid, top.gid = tarfile.DIRTYPE, 0o777, os.getuid(), os.getgid()
        top.mtime = int(time.time())
        tar.addfile(top)
        for path in sorted(directory.iterdir()):
            if path.is_file():
                info = tar.gettarinfo(str(path), arcname=str(path).lstrip("/"))
                info.uid, info.gid, info.uname, info.gname = os.getuid(), os.getgid(), "", ""
                with open(path, "rb") as fh:
                    tar.addfile(info, fh)
    return buffer.getvalue()


def _fetch_results(container: Any, directory: Path) -> None:
    """Copy the files the tool wrote in the container's run directory back into the local one (get_archive);
    a file the local directory already has (the script, test data) is left as it is."""
    import docker.errors

    try:
        stream, _ = container.get_archive(str(directory))
        data = b"".join(stream)
    except docker.errors.DockerException:
        return  # never created or already gone: the part wrote nothing to fetch
    import tarfile

    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        for member in tar.getmembers():
            parts = Path(member.name).parts[1:]  # the archive's top entry is the directory itself
            if not member.isfile() or len(parts) != 1 or parts[0] in ("..", "."):
                continue
            target = directory / parts[0]
            source = tar.extractfile(member)
            if target.exists() or source is None:
                continue
            with open(target, "wb") as out:
                while block := source.read(1 << 20):
                    out.write(block)


class _States:
    """Polls the containers' states (one API call per container per tick)."""

    def __init__(self, containers: list[Any]):
        self.containers = containers

    def any_running(self) -> bool:
        running = False
        for container in self.containers:
            container.reload()
            if container.status in ("created", "running", "restarting"):
                running = True
        return running


def _remove_all(containers: list[Any], streams: list[threading.Thread]) -> None:
    """Remove every container, also after an error or a signal; let finished logs drain first."""
    import docker.errors

    with contextlib.suppress(docker.errors.DockerException):
        if not _States(containers).any_running():
            for thread in streams:
                thread.join(timeout=5)
    for container in containers:
        with contextlib.suppress(docker.errors.DockerException):
            container.remove(force=True)
    for thread in streams:
        thread.join(timeout=2)


def _exit_code(container: Any) -> int:
    container.reload()
    return int(container.attrs.get("State", {}).get("ExitCode", -1))


def _signal_all(containers: list[Any], sig: int) -> None:
    import docker.errors

    for container in containers:
        with contextlib.suppress(docker.errors.DockerException):
            container.kill(signal=int(sig))


def _stream_logs(container: Any, log: Path) -> threading.Thread:
    """Copy the container's output into the run's console log as it comes."""

    def pump() -> None:
        with open(log, "ab") as out, contextlib.suppress(Exception):
            for chunk in container.logs(stream=True, follow=True, stdout=True, stderr=True):
                out.write(chunk)
                out.flush()

    thread = threading.Thread(target=pump, name=f"logs-{log.name}", daemon=True)
    thread.start()
    return thread


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "explanation", None) or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
