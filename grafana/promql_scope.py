"""Add a label matcher to every vector selector of a PromQL expression.

The Helm chart scopes its rules to one release's `job`, so two releases in one Prometheus never
read (or record over) each other's series. The rules come from `grafana/rules.py` as text; this
walks that text with a small lexer (strings, label matchers, ranges, label lists after `by`,
`on` and the like are skipped) and adds the matcher to each selector that has no `job` matcher
of its own. The tests check the result against the whole rule file in a real Prometheus.
"""

from __future__ import annotations

import re
from typing import Final

__all__ = ["scope_selectors"]

_STRING: Final = r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`'
_TOKEN: Final = re.compile(
    # @@...@@ is a placeholder of grafana/chart_files.py (PromQL has no `@@`): left alone.
    r"(?P<placeholder>@@[^@]*@@)"
    rf"|(?P<string>{_STRING})"
    rf"|(?P<braces>\{{(?:{_STRING}|[^{{}}\"'`])*\}})"
    r"|(?P<range>\[[^\]]*\])"
    r"|(?P<number>[0-9][0-9A-Za-z_.]*(?:[eE][-+][0-9]+)?)"
    r"|(?P<name>[A-Za-z_:][A-Za-z0-9_:]*)"
    r"|(?P<space>\s+)"
    r"|(?P<other>.)",
    re.S,
)
# Words that are operators, not metric names (PromQL keywords are case-insensitive).
_KEYWORDS: Final = frozenset(
    {
        *("sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values"),
        *("bottomk", "topk", "quantile", "limitk", "limit_ratio", "and", "or", "unless"),
        *("by", "without", "on", "ignoring", "group_left", "group_right"),
        *("bool", "offset", "atan2", "inf", "nan"),
    }
)
# Keywords followed by a parenthesised list of label names, not expressions.
_LABEL_LISTS: Final = frozenset({"by", "without", "on", "ignoring", "group_left", "group_right"})
_HAS_JOB: Final = re.compile(r"[{,]\s*job\s*(?:=|!=|=~|!~)")


def _scoped(braces: str, matcher: str) -> str:
    if _HAS_JOB.search(braces):
        return braces
    inner = braces[1:-1].strip()
    return "{" + matcher + (", " + inner if inner else "") + "}"


def scope_selectors(expr: str, matcher: str) -> str:
    """`expr` with `matcher` (e.g. `job="x"`) in every selector that names no job itself."""
    tokens = [(m.lastgroup or "other", m.group()) for m in _TOKEN.finditer(expr)]
    out: list[str] = []
    index = 0
    while index < len(tokens):
        kind, text = tokens[index]
        following = next(
            (i for i in range(index + 1, len(tokens)) if tokens[i][0] != "space"), None
        )
        after = tokens[following] if following is not None else ("", "")
        if kind == "name" and text.lower() in _LABEL_LISTS and after[1] == "(":
            # Copy the label list verbatim: its words are label names.
            assert following is not None
            close = next(i for i in range(following, len(tokens)) if tokens[i][1] == ")")
            out.extend(t for _, t in tokens[index : close + 1])
            index = close + 1
            continue
        if kind == "name" and text.lower() not in _KEYWORDS and after[1] != "(":
            if after[0] == "braces":
                assert following is not None
                out.extend(t for _, t in tokens[index:following])
                out.append(_scoped(after[1], matcher))
                index = following + 1
                continue
            out.append(text + "{" + matcher + "}")
        elif kind == "braces":
            out.append(_scoped(text, matcher))
        else:
            out.append(text)
        index += 1
    return "".join(out)
