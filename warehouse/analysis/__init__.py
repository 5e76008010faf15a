"""Analysis over warehouse data: SLO verdicts (slo), run verdicts (verdict), baselines, compare, change points
and trends, and the CI gate with the JUnit document it writes (junit, which `report --format junit` writes
too); each returns result objects with to_dict()."""

# Fewer requests than this in a run leave a step not judged by a comparison (at least 10 samples above the p95 of
# each run). Here, not in compare, so that a run's warning about thin steps loads none of compare's statistics.
MIN_SAMPLES = 200
