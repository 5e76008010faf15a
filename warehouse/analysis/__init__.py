"""Analysis over warehouse data: SLO verdicts (comparisons, trends and change points build on it)."""
