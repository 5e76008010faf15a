"""Analysis over warehouse data: SLO verdicts (slo), run verdicts (verdict), baselines, compare, change points
and trends, and the CI gate; each returns result objects with to_dict()."""
