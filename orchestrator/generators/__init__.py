"""Script generators: one module per load tool, registered by tool name."""

from __future__ import annotations

from orchestrator.generators.base import GENERATORS, GeneratedScript, GenerationOptions, Generator, generate
from orchestrator.generators.jmeter import JMeterGenerator
from orchestrator.generators.k6 import K6Generator

__all__ = [
    "GENERATORS",
    "GeneratedScript",
    "GenerationOptions",
    "Generator",
    "JMeterGenerator",
    "K6Generator",
    "generate",
]
