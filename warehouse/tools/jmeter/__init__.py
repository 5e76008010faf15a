"""JMeter on the warehouse side: its JTL results (jtl_csv, jtl_xml) and how its backend listener's interval
aggregates fold into its figures (figures; the listener's lines themselves are read by influx/)."""

from warehouse.tools import WarehouseTool, register
from warehouse.tools.jmeter.figures import FOLDING

register(WarehouseTool("jmeter", "JMeter", folding=FOLDING))
