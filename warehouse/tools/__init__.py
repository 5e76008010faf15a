"""Load tools on the warehouse side: one package per tool, holding what the warehouse knows of that tool alone."""
