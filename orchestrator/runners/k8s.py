"""The Kubernetes runner: a k6 script as a ConfigMap plus a k6-operator TestRun, applied with kubectl.

`render` is pure (spec facts in, manifests out) and backs `perfhouse k8s render`; the runner applies
what it renders, waits for the TestRun to finish, and deletes it when the run is stopped. The k6
operator splits the test over `parallelism` runner pods with execution segments itself.

Results come home through perfhouse's results receiver: every runner pod gets `--out influxdb=URL` and,
through its environment, the receiver's token and the tags `perfhouse_run` and `perfhouse_generator` (its
pod name, by the downward API), so one run holds every pod's requests, each pod as a generator.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import yaml

from orchestrator.errors import GenerationError, PerfhouseError, ToolMissingError
from orchestrator.runners.base import (
    Execution,
    Job,
    ResultsSink,
    RunnerOptions,
    StopRequest,
    Target,
    register,
    supervise,
)
from orchestrator.tools import Tool

TESTRUN_API = "k6.io/v1alpha1"
CONFIGMAP_LIMIT = 1_000_000  # bytes: Kubernetes refuses larger objects (1 MiB, with metadata)
FINISHED_STAGES = {"finished": 0, "error": 1}


class KubernetesError(PerfhouseError):
    """kubectl is missing, not configured, or refused a manifest."""


@dataclass(frozen=True)
class Manifests:
    configmap: dict[str, Any]
    testrun: dict[str, Any]

    def write(self, directory: Path) -> list[Path]:
        directory.mkdir(parents=True, exist_ok=True)
        paths = [directory / "configmap.yaml", directory / "testrun.yaml"]
        for path, doc in zip(paths, (self.configmap, self.testrun), strict=True):
            path.write_text(yaml.dump(doc, Dumper=_Dumper, sort_keys=False, allow_unicode=True), encoding="utf-8")
        return paths


class _Dumper(yaml.SafeDumper):
    """Scripts as readable literal blocks; no anchors (each manifest reads on its own)."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def k8s_name(*parts: str, limit: int = 52) -> str:
    """A DNS-1123 name (lowercase alphanumerics and '-'), short enough for the operator's job suffixes."""
    text = re.sub(r"[^a-z0-9-]+", "-", "-".join(parts).lower()).strip("-")
    text = re.sub(r"-{2,}", "-", text)[:limit].rstrip("-")
    if not text:
        raise GenerationError(f"cannot make a Kubernetes name from {parts!r}")
    return text


def render(
    name: str,
    script_file: str,
    script: str,
    parallelism: int,
    image: str,
    namespace: str = "default",
    arguments: list[str] | None = None,
    labels: dict[str, str] | None = None,
    env: list[dict[str, Any]] | None = None,
) -> Manifests:
    """The ConfigMap holding the script and the TestRun that runs it on `parallelism` pods."""
    if parallelism < 1:
        raise GenerationError(f"--parallelism must be at least 1, found {parallelism}")
    if len(script.encode()) > CONFIGMAP_LIMIT:
        raise GenerationError(f"the k6 script is {len(script.encode())} bytes; a ConfigMap holds at most "
                              f"{CONFIGMAP_LIMIT}")
    args = list(arguments or [])
    spaced = [a for a in args if not a or re.search(r"\s", a)]
    if spaced:
        # spec.arguments is one space-separated string: an argument holding a space cannot survive it
        raise GenerationError(f"k6 arguments for a TestRun cannot contain spaces: {spaced[0]!r}")
    meta_labels = {"app.kubernetes.io/managed-by": "perfhouse", **(labels or {})}
    configmap = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": namespace, "labels": meta_labels},
        "data": {script_file: script},
    }
    spec: dict[str, Any] = {
        "parallelism": parallelism,
        "script": {"configMap": {"name": name, "file": script_file}},
    }
    if args:
        spec["arguments"] = " ".join(args)
    spec["runner"] = {"image": image, "metadata": {"labels": meta_labels}}
    if env:
        spec["runner"]["env"] = env
    testrun = {
        "apiVersion": TESTRUN_API,
        "kind": "TestRun",
        "metadata": {"name": name, "namespace": namespace, "labels": meta_labels},
        "spec": spec,
    }
    return Manifests(configmap, testrun)


def kubectl(options: RunnerOptions, *args: str, timeout_s: float = 60) -> str:
    binary = shutil.which("kubectl")
    if binary is None:
        raise KubernetesError("--runner k8s needs kubectl on PATH, configured for a cluster with the k6-operator")
    argv = [binary, *(["--context", options.kube_context] if options.kube_context else []), *args]
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        raise KubernetesError(f"kubectl {' '.join(args[:2])} did not answer in {timeout_s:g}s") from None
    if proc.returncode != 0:
        message = (proc.stderr or proc.stdout).strip().splitlines()
        raise KubernetesError(f"kubectl {shlex.join(args[:3])}: {message[0] if message else proc.returncode}")
    return proc.stdout


# The k6 settings that send a pod's results to the receiver. k6 holds a write until it is answered and the
# receiver answers once it has stored it (every couple of seconds), so k6 pushes every 5 s, not every 1 s:
# no write waits longer than the push interval (which k6 would warn about). K6_TAGS carries both tags
# because a `--tag` argument would replace it whole.
PUSH_INTERVAL = "5s"


def results_env(run_id: str, sink: ResultsSink) -> list[dict[str, Any]]:
    """The runner pods' environment that tags their results with run and pod and authenticates their writes."""
    return [
        {"name": "PERFHOUSE_POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": "K6_TAGS", "value": f"perfhouse_run:{run_id},perfhouse_generator:$(PERFHOUSE_POD)"},
        {"name": "K6_INFLUXDB_USERNAME", "value": "perfhouse"},
        {"name": "K6_INFLUXDB_PASSWORD", "value": sink.token},
        {"name": "K6_INFLUXDB_PUSH_INTERVAL", "value": PUSH_INTERVAL},
    ]


@register
class K8sRunner:
    name: ClassVar[str] = "k8s"
    on_this_host: ClassVar[bool] = False
    inherits_fds: ClassVar[bool] = False
    poll_s: ClassVar[float] = 2.0
    streams_results: ClassVar[bool] = True  # the pods send their results to perfhouse's receiver

    def target(self, tool: Tool, options: RunnerOptions) -> Target:
        if self.name not in tool.runners:
            raise ToolMissingError(f"--runner k8s runs k6 only (through the k6-operator), not {tool.name}")
        try:
            context = kubectl(options, "config", "current-context", timeout_s=15).strip()
        except KubernetesError as exc:
            raise KubernetesError(f"--runner k8s needs a configured kubectl context: {exc}") from None
        image = options.image(tool.name)
        tag = image.rpartition(":")[2] if ":" in image.rpartition("/")[2] else "latest"
        return Target(f"{image} ({context})", tag.lstrip("v"))

    def execute(self, job: Job) -> Execution:
        started = time.monotonic()
        script_path = Path(job.parts[0].argv[-1])
        name = k8s_name("perfhouse", job.run_id)
        manifests = render(
            name,
            script_path.name,
            script_path.read_text(encoding="utf-8"),
            len(job.parts),
            job.options.image(job.tool.name),
            job.options.namespace,
            ["--out", f"influxdb={job.results.url}/perfhouse"] if job.results else ["--tag", f"perfhouse_run={job.run_id}"],
            {"perfhouse.run": job.run_id},
            results_env(job.run_id, job.results) if job.results else None,
        )
        paths = manifests.write(job.directory / "k8s")
        log = job.parts[0].log
        ns = ["--namespace", job.options.namespace]
        stage = {"value": ""}

        def alive() -> bool:
            try:
                stage["value"] = kubectl(job.options, "get", "testrun", name, *ns, "-o",
                                         "jsonpath={.status.stage}").strip()
            except KubernetesError as exc:
                if "notfound" in str(exc).lower().replace(" ", ""):
                    return False  # deleted: stopped by us or by someone else
                raise
            return stage["value"] not in FINISHED_STAGES

        def stop() -> None:
            kubectl(job.options, "delete", "testrun", name, *ns, "--wait=false", "--ignore-not-found")

        with open(log, "a", encoding="utf-8") as out, StopRequest().on_signals() as stop_request:
            for path in paths:
                out.write(kubectl(job.options, "apply", "-f", str(path), *ns))
            interrupted, timed_out = supervise(
                job,
                alive=alive,
                stop=stop,
                kill=stop,
                stop_request=stop_request,
                started=started,
                clock=time.monotonic,
                sleep=lambda _: time.sleep(self.poll_s),
            )
            out.write(f"testrun {name}: stage {stage['value'] or 'deleted'}\n")
        code = FINISHED_STAGES.get(stage["value"], 1)
        return Execution((code,), interrupted, timed_out, (log,), time.monotonic() - started)
