"""Analysis over warehouse data: SLO verdicts (slo), run verdicts (verdict), baselines, compare, change points
and trends, and the CI gate with the JUnit document it writes (junit, which `report --format junit` writes
too); each returns result objects with to_dict()."""
