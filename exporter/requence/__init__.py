"""The Requence side: from the access token to updates applied in order.

`token` (access tokens), `credentials` (where they come from, checked), `stream` (the
watch-all connection: resume, backoff), `sse` (framing), `decode` (events to `Update`s) and
`pipeline` (positions, duplicates, skips, shards and lag; it applies each update to the
tracker).
"""
