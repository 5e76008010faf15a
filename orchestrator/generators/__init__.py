"""Script generators: one module per load tool, used by that tool's module in orchestrator.tools (which renders a
spec for a tool by name: `orchestrator.tools.generate`); nothing here imports the tool registry, and a generator
loads when its tool renders (orchestrator.generators.k6, .jmeter, .locust)."""

from __future__ import annotations

from orchestrator.generators.base import GeneratedScript, GenerationOptions, Generator

__all__ = [
    "GeneratedScript",
    "GenerationOptions",
    "Generator",
]
