"""A faithful Requence watch-all server with a realistic workload, for demos and tests."""
