"""Script generators: one module per load tool, used by that tool's module in orchestrator.tools."""

from __future__ import annotations

from orchestrator.generators.base import GeneratedScript, GenerationOptions, Generator, generate
from orchestrator.generators.jmeter import JMeterGenerator
from orchestrator.generators.k6 import K6Generator

__all__ = [
    "GeneratedScript",
    "GenerationOptions",
    "Generator",
    "JMeterGenerator",
    "K6Generator",
    "generate",
]
