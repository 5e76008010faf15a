"""The Kubernetes runner: a k6 script and its data files as a ConfigMap plus a k6-operator TestRun, applied with
kubectl; the script's `${env:NAME}` values as a Secret the TestRun refers to.

`render` is pure (spec facts in, manifests out) and backs `perfhouse k8s render`; the runner applies
what it renders, waits for the TestRun to finish, and deletes it when the run is stopped. The k6
operator splits the test over `parallelism` runner pods with execution segments itself.

The operator mounts the whole ConfigMap at /test and runs /test/<file>, so every data file is a key of the same
ConfigMap: the pods find it beside the script, where the script opens it. Secret values never go into the
ConfigMap, the TestRun or any file perfhouse writes unasked: the TestRun's pods read each one from the Secret
(`env[].valueFrom.secretKeyRef`); the runner creates that Secret from its environment through kubectl's stdin
and deletes it after the run; `k8s render` writes it only when asked (else a template without values).

Results come home through perfhouse's results receiver: every runner pod gets `--out influxdb=URL` and,
through its environment, the receiver's token and the tags `perfhouse_run` and `perfhouse_generator` (its
pod name, by the downward API), so one run holds every pod's requests, each pod as a generator.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shlex
import shutil
import subprocess
import time
from collections.abc import Mapping, Sequence
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


SECRET_TEMPLATE = "secret.yaml.template"  # not *.yaml: `kubectl apply -f DIR` leaves it alone


@dataclass(frozen=True)
class Manifests:
    configmap: dict[str, Any]
    testrun: dict[str, Any]
    secret: dict[str, Any] | None = None  # the Secret the TestRun reads ${env:NAME} from, its values empty

    def write(self, directory: Path, secret_values: Mapping[str, str] | None = None) -> list[Path]:
        """configmap.yaml and testrun.yaml; the Secret as secret.yaml holding `secret_values` (a private file), or
        without them as a template that says how to create it (never applied by `kubectl apply -f DIR`)."""
        directory.mkdir(parents=True, exist_ok=True)
        paths = [directory / "configmap.yaml", directory / "testrun.yaml"]
        for path, doc in zip(paths, (self.configmap, self.testrun), strict=True):
            path.write_text(_yaml(doc), encoding="utf-8")
        if self.secret is not None and secret_values is not None:
            path = directory / "secret.yaml"
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            os.fchmod(fd, 0o600)  # a secret.yaml there before may have been readable by others
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                out.write(_yaml(self.secret_with(secret_values)))
            paths.insert(0, path)
        elif self.secret is not None:
            path = directory / SECRET_TEMPLATE
            comment = "".join(f"# {line}\n" for line in (
                "The values of the spec's ${env:NAME} variables: the TestRun's pods read them from this Secret,",
                "which must exist before the TestRun starts. Create it from your environment:",
                f"  {self.create_secret_command()}",
                "or fill in the values below, save this file as secret.yaml and apply it.",
            ))
            path.write_text(comment + _yaml(self.secret), encoding="utf-8")
            paths.insert(0, path)
        return paths

    @property
    def secret_keys(self) -> list[str]:
        return list((self.secret or {}).get("stringData", {}))

    def secret_with(self, values: Mapping[str, str]) -> dict[str, Any]:
        """The Secret holding `values` for its keys (every key must have one)."""
        if self.secret is None:
            raise GenerationError("this TestRun reads no Secret")
        missing = [k for k in self.secret_keys if k not in values]
        if missing:
            raise GenerationError(f"no value for {', '.join(missing)} of Secret {self.secret['metadata']['name']}")
        return {**self.secret, "stringData": {k: values[k] for k in self.secret_keys}}

    def create_secret_command(self) -> str:
        """The kubectl command that creates the Secret from the shell's environment."""
        if self.secret is None:
            return ""
        meta = self.secret["metadata"]
        literals = " ".join(f'--from-literal={k}="${k}"' for k in self.secret_keys)
        return f"kubectl create secret generic {meta['name']} --namespace {meta['namespace']} {literals}"


def _yaml(doc: dict[str, Any]) -> str:
    return yaml.dump(doc, Dumper=_Dumper, sort_keys=False, allow_unicode=True)


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


# A ConfigMap key (and so a file name under /test): what Kubernetes allows, and not a directory entry of its own.
CONFIGMAP_KEY = re.compile(r"[-._a-zA-Z0-9]{1,253}")


def configmap_files(script_file: str, script: str, files: Mapping[str, bytes]) -> tuple[dict[str, str], dict[str, str]]:
    """The ConfigMap's `data` (the script, and data files that are UTF-8 text) and `binaryData` (other data files,
    base64): one key per file, named as the script opens it. Refuses a name Kubernetes would not take as a key, two
    files of one name, and more than one ConfigMap holds."""
    for key in (script_file, *files):
        if not CONFIGMAP_KEY.fullmatch(key) or key in (".", ".."):
            raise GenerationError(f"{key!r}: a ConfigMap key (a file name under /test in the k6 pods) allows only "
                                  "letters, digits, '-', '_' and '.'; rename the file")
    if script_file in files:
        raise GenerationError(f"a data file is named {script_file!r} like the k6 script; rename it")
    data, binary = {script_file: script}, {}
    for key, content in files.items():
        try:
            data[key] = content.decode("utf-8")
        except UnicodeDecodeError:
            binary[key] = base64.b64encode(content).decode("ascii")
    sizes = {k: len(k) + len(v.encode()) for k, v in data.items()} | {k: len(k) + len(v) for k, v in binary.items()}
    if sum(sizes.values()) > CONFIGMAP_LIMIT:
        each = ", ".join(f"{k} {n:,}" for k, n in sorted(sizes.items(), key=lambda kv: -kv[1]))
        raise GenerationError(
            f"the k6 script and its data files are {sum(sizes.values()):,} bytes ({each}); one ConfigMap holds at "
            f"most {CONFIGMAP_LIMIT:,}, and the k6-operator mounts one: use smaller data files, or put the files on "
            "a volume the TestRun reads (spec.script.volumeClaim)")
    return data, binary


def data_files(paths: Sequence[Path]) -> dict[str, bytes]:
    """The data files a script opens, by the name it opens them with (their file name, as they lie beside it)."""
    files: dict[str, bytes] = {}
    for path in paths:
        content = path.read_bytes()
        if files.get(path.name, content) != content:
            raise GenerationError(f"two data files are named {path.name!r} ({path}); the k6 pods find both beside "
                                  "the script, under one name: rename one")
        files[path.name] = content
    return files


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
    files: Mapping[str, bytes] | None = None,
    secrets: Sequence[str] = (),
) -> Manifests:
    """The ConfigMap holding the script and the data `files` it opens (by name), the TestRun that runs it on
    `parallelism` pods and, when the script reads environment variables `secrets`, the Secret (without values)
    that the TestRun's pods read them from."""
    if parallelism < 1:
        raise GenerationError(f"--parallelism must be at least 1, found {parallelism}")
    data, binary = configmap_files(script_file, script, files or {})
    args = list(arguments or [])
    spaced = [a for a in args if not a or re.search(r"\s", a)]
    if spaced:
        # spec.arguments is one space-separated string: an argument holding a space cannot survive it
        raise GenerationError(f"k6 arguments for a TestRun cannot contain spaces: {spaced[0]!r}")
    meta_labels = {"app.kubernetes.io/managed-by": "perfhouse", **(labels or {})}
    configmap: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": namespace, "labels": meta_labels},
        "data": data,
    }
    if binary:
        configmap["binaryData"] = binary
    spec: dict[str, Any] = {
        "parallelism": parallelism,
        "script": {"configMap": {"name": name, "file": script_file}},
    }
    if args:
        spec["arguments"] = " ".join(args)
    spec["runner"] = {"image": image, "metadata": {"labels": meta_labels}}
    runner_env = list(env or [])
    secret: dict[str, Any] | None = None
    if secrets:
        taken = {e["name"] for e in runner_env} & set(secrets)
        if taken:
            raise GenerationError(f"${{env:{sorted(taken)[0]}}}: perfhouse sets this variable in the k6 pods itself; "
                                  "choose another name")
        secret_name = f"{name}-env"
        secret = {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": secret_name, "namespace": namespace, "labels": meta_labels},
            "type": "Opaque",
            "stringData": {key: "" for key in sorted(secrets)},
        }
        # one reference per variable, not optional: a pod whose Secret lacks a key does not start (instead of
        # sending requests without the value)
        runner_env += [{"name": key, "valueFrom": {"secretKeyRef": {"name": secret_name, "key": key}}}
                       for key in sorted(secrets)]
    if runner_env:
        spec["runner"]["env"] = runner_env
    testrun = {
        "apiVersion": TESTRUN_API,
        "kind": "TestRun",
        "metadata": {"name": name, "namespace": namespace, "labels": meta_labels},
        "spec": spec,
    }
    return Manifests(configmap, testrun, secret)


def kubectl(options: RunnerOptions, *args: str, timeout_s: float = 60, stdin: str | None = None) -> str:
    """kubectl's output; `stdin` is what it reads (`-f -`): the way secret values reach it, never argv or a file."""
    binary = shutil.which("kubectl")
    if binary is None:
        raise KubernetesError("--runner k8s needs kubectl on PATH, configured for a cluster with the k6-operator")
    argv = [binary, *(["--context", options.kube_context] if options.kube_context else []), *args]
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout_s, input=stdin,
                              stdin=None if stdin is not None else subprocess.DEVNULL)
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
            files=data_files(job.files),
            secrets=job.secrets,
        )
        paths = [p for p in manifests.write(job.directory / "k8s") if p.name != SECRET_TEMPLATE]  # no values in it
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
            if manifests.secret is not None:
                # `create`, not `apply`: apply would copy the values into an annotation of the Secret
                secret = manifests.secret_with(job.env)
                out.write(kubectl(job.options, "create", "-f", "-", *ns, stdin=json.dumps(secret)))
            try:
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
            finally:
                if manifests.secret is not None:
                    secret_name = manifests.secret["metadata"]["name"]
                    try:
                        out.write(kubectl(job.options, "delete", "secret", secret_name, *ns, "--ignore-not-found",
                                          "--wait=false"))
                    except KubernetesError as exc:
                        out.write(f"secret {secret_name} not deleted: {exc}; delete it with kubectl\n")
            out.write(f"testrun {name}: stage {stage['value'] or 'deleted'}\n")
        code = FINISHED_STAGES.get(stage["value"], 1)
        return Execution((code,), interrupted, timed_out, (log,), time.monotonic() - started)
