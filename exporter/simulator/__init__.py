"""A faithful Requence watch-all server with a realistic workload, for demos and tests.

- `workload`: seeded task templates (`templates`) turned into a time-ordered update stream.
- `server`: `WatchAllSimulator` / `serve_simulator`, the workload served in real time.
- `scripted`: `ScriptedServer`, fixed events with per-connection fault plans.
"""
