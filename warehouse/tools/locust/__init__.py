"""Locust on the warehouse side: its request lines (locust_jsonl), its own `--csv` statistics (locust_csv) and
how those fold into its figures (figures)."""

from warehouse.tools import WarehouseTool, register
from warehouse.tools.locust.figures import FOLDING

register(WarehouseTool("locust", "Locust", folding=FOLDING))
