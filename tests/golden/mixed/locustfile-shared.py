GenerationError: profile 'golden-shared' gives journeys a shape of their own; Locust runs one load shape per test: use k6 or JMeter for this profile
