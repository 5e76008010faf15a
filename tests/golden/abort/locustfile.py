GenerationError: spec.yaml: slos[1] sets abort_on_fail, and perfhouse cannot stop a Locust run when an SLO fails; run this spec with k6, or drop abort_on_fail for Locust runs
