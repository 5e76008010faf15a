GenerationError: spec.yaml: trace context (a traceparent on every request) is generated for k6 and JMeter, not yet for Locust; run this spec with k6 or JMeter, or without `trace`
