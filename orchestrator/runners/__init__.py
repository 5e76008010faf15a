"""Runners execute a tool's job somewhere (local processes, Docker containers, Kubernetes) and stop it cleanly."""

from orchestrator.runners.base import RUNNERS, Execution, Job, Part, Runner, RunnerOptions, Target
from orchestrator.runners.docker import DockerRunner
from orchestrator.runners.k8s import K8sRunner
from orchestrator.runners.local import LocalRunner

__all__ = [
    "RUNNERS",
    "DockerRunner",
    "Execution",
    "Job",
    "K8sRunner",
    "LocalRunner",
    "Part",
    "Runner",
    "RunnerOptions",
    "Target",
]
