"""k6 on the warehouse side: its JSON and CSV outputs (k6_json, k6_csv) and its own end-of-test summary (summary).
k6 is the group's reference: `compare --group` compares every other tool of a group against its run."""

from warehouse.tools import OwnSummary, WarehouseTool, register
from warehouse.tools.k6 import summary

register(WarehouseTool("k6", "k6", summary=OwnSummary(summary.beside, summary.PREFERRED, summary.figures),
                       group_reference=True))
