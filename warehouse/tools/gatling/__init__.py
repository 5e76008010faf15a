"""Gatling on the warehouse side: its simulation.log (text of 2.0–3.12, binary of 3.13 on) as a results format."""

from __future__ import annotations

from warehouse.tools.gatling.simulation_log import SimulationLog

__all__ = ["SimulationLog"]
