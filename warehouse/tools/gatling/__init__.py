"""Gatling on the warehouse side: its simulation.log (text of 2.0–3.12, binary of 3.13 on) as a results format
(simulation_log, with layouts and binary beside it). Gatling writes no interval aggregates and no end-of-test
summary the warehouse keeps, so its tool has neither."""

from warehouse.tools import WarehouseTool, register

register(WarehouseTool("gatling", "Gatling"))
