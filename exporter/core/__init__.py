"""The core every stage shares; it imports no other subpackage.

`updates` (the update model), `tasks` and `tracker` (the only task state and what its
observers receive), `checkpoint` (the state file), `status` (the stream's status),
`errors`, `logs`, `headers` (values bound for HTTP headers, secrets among them), `ids` (trace
and span ids), `malloc` and `runtime` (the process-wide settings: the allocator's and the
garbage collector's) and `options` (every command's flags in one style: variables, metavars,
defaults in the help).
"""
