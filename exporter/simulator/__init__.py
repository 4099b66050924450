"""A faithful Requence watch-all server with a realistic workload, for demos and tests.

- `workload`: seeded task templates (`templates`) turned into a time-ordered update stream. Every
  run opens with four tasks (a clean one using all four node types, a deferral and retry, a
  failure, an abort), so any seed shows all nine update types within seconds.
- `payloads`: what tasks carry in `input`, `data` and `result`; `files`: the tagged references
  among them and the files service behind them.
- `server`: `WatchAllSimulator` / `serve_simulator`, the workload served in real time, and the
  files service on the same address.
- `scripted`: `ScriptedServer`, fixed events with per-connection fault plans.

Tagged values are the shapes the official SDK's guards (`requence/wire.py`) accept:

- `{"__REQUENCE_type": "RequenceFile", "url", "size" (bytes, > 0), "mime", "name"?}`: task
  inputs (the document), node data, results. `GET {url}` answers `size` bytes of `mime`.
- `{"__REQUENCE_type": "RequenceStream", "url", "mime"}`: node data. `GET {url}` answers the
  bytes; with `x-requence-stream-protocol: framed` the SDK's framed protocol, header echoed.
- `{"__REQUENCE_type": "ClaimCheck", "url", "size"}`: a node output value over the simulated
  `maxPayloadSize` of 1 MiB. `GET {url}` answers that value as compact JSON of exactly `size`
  bytes; it holds a `RequenceFile` reference of its own.
- `{"__REQUENCE_type": "RequenceCallback", "lifetime": "connection", "sourceId", "callbackId",
  "outputName", "propertyPath"}` and `{..., "lifetime": "durable", "name", "nodeId", "bound",
  "outputName", "propertyPath"}`: node data only (the SDK refuses callbacks in a task input).

Reference URLs are `{base URL}/files/file/{key}-{size}.{ext}`, `/files/stream/{key}.{ext}` and
`/files/claim-check/{key}-{size}`: the content is derived from the URL, so it is the same on every
fetch and nothing is stored. They need no token: the SDK fetches them without one.
`since` is ISO 8601: with an offset, or naive (as the Python SDK's `datetime.now().isoformat()`
sends it) meaning the simulator's local time.
"""
