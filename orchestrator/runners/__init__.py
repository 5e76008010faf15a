"""Runners execute a tool invocation somewhere (a local process today) and stop it cleanly."""

from orchestrator.runners.base import RUNNERS, Execution, Runner
from orchestrator.runners.local import LocalRunner

__all__ = ["RUNNERS", "Execution", "LocalRunner", "Runner"]
