"""The InfluxDB line protocol that k6 (`--out influxdb`) and JMeter's backend listener both write: a format shared
by two tools, so it registers no tool of its own (influx_line reads which tool wrote a file)."""
