"""The performance harness: the floors and the exporter on one pre-rendered stream."""
