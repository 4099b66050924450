"""Prometheus rules for the exporter's metrics: the generator behind `requence-exporter rules`.

It lives in the package (not in `grafana/`) so the installed command can print the rule file;
`grafana/build.py` and `grafana/chart_files.py` import it to write the committed copies.
"""
