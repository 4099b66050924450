"""The HTTP side: the server, the exporter's endpoints, TLS and basic auth.

`http_server`, `http_request` and `http_exchange` (a small asyncio HTTP/1.1 server on h11,
with its limits, also used by the simulator), `endpoints` (/metrics, /healthz, /readyz,
/status, the landing page), `webconfig` (the web config file: TLS, headers) and `basicauth`.
"""
