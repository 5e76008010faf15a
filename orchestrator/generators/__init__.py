"""Script generators: one module per load tool, used by that tool's module in orchestrator.tools (which renders a
spec for a tool by name: `orchestrator.tools.generate`); nothing here imports the tool registry."""

from __future__ import annotations

from orchestrator.generators.base import GeneratedScript, GenerationOptions, Generator
from orchestrator.generators.jmeter import JMeterGenerator
from orchestrator.generators.k6 import K6Generator

__all__ = [
    "GeneratedScript",
    "GenerationOptions",
    "Generator",
    "JMeterGenerator",
    "K6Generator",
]
