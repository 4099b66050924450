"""Add label matchers to every vector selector of a PromQL expression.

The Helm chart scopes its rules to one release's `job` and `namespace`, so two releases in one
Prometheus never read (or record over) each other's series. The rules come from
`exporter/metrics/alerting` as text; this walks that text with a small lexer (strings, label
matchers, ranges, label lists after `by`, `on` and the like are skipped) and adds each matcher
to each selector that has no matcher of its own for that label. The tests check the result
against the whole rule file in a real Prometheus.
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
_MATCHER: Final = re.compile(rf"\s*([A-Za-z_]\w*)\s*(?:=~|!~|!=|=)\s*(?:{_STRING})\s*,?")


def _has(braces: str, label: str) -> bool:
    return re.search(rf"[{{,]\s*{label}\s*(?:=|!=|=~|!~)", braces) is not None


def _scoped(braces: str, matchers: list[tuple[str, str]]) -> str:
    added = [text for label, text in matchers if not _has(braces, label)]
    if not added:
        return braces
    inner = braces[1:-1].strip()
    return "{" + ", ".join(added) + (", " + inner if inner else "") + "}"


def _split(matcher: str) -> list[tuple[str, str]]:
    parts = [
        (m.group(1), m.group(0).strip().rstrip(",").strip()) for m in _MATCHER.finditer(matcher)
    ]
    if "".join(text for _, text in parts).replace(" ", "") != matcher.replace(",", "").replace(
        " ", ""
    ):
        raise ValueError(f"not a list of label matchers: {matcher!r}")
    return parts


def scope_selectors(expr: str, matcher: str) -> str:
    """`expr` with the label matchers of `matcher` (e.g. `job='x', namespace='y'`) in every
    selector that has no matcher of its own for that label."""
    matchers = _split(matcher)
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
                out.append(_scoped(after[1], matchers))
                index = following + 1
                continue
            out.append(text + "{" + ", ".join(t for _, t in matchers) + "}")
        elif kind == "braces":
            out.append(_scoped(text, matchers))
        else:
            out.append(text)
        index += 1
    return "".join(out)
