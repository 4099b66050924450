"""Generators for the Grafana dashboards and Prometheus rules shipped with the exporter."""
