"""The traces sink: finished tasks become OTLP spans, encoded and sent in a second process.

`sink` (the tracker observer), `span_child` (starting the span process), `span_process`,
`spans` (the compact form tasks cross in), `otlp_wire` and `otlp_replies` (protobuf),
`otlp_transport` (HTTP and gRPC) and `otlp_config` (the `OTEL_*` settings).
"""
