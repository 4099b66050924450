"""A small, deterministic YAML writer for the rule files (plain Python, no dependencies).

It writes dicts in insertion order, lists of dicts, and scalars; multi-line strings become
literal blocks so PromQL stays readable, every other string is double-quoted.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

__all__ = ["dump"]

_PLAIN_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*")
# Characters YAML does not allow raw, or reads as line breaks inside a quoted string.
_UNSAFE = re.compile(
    r"[^\t\n\r\x20-\x7e\xa0-\u2027\u202a-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]"
)
_BLOCK_SAFE = re.compile(r"^[\x20-\x7e\n]*$")


def _quote(text: str) -> str:
    quoted = json.dumps(text, ensure_ascii=False)
    return _UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", quoted)


# Words YAML 1.1 reads as booleans or null rather than as strings.
_RESOLVED_WORDS = frozenset({"null", "true", "false", "yes", "no", "on", "off", "y", "n"})


def _key(key: str) -> str:
    plain = _PLAIN_KEY.fullmatch(key) and key.lower() not in _RESOLVED_WORDS
    return key if plain else _quote(key)


def _float(value: float) -> str:
    if math.isnan(value):
        return ".nan"
    if math.isinf(value):
        return ".inf" if value > 0 else "-.inf"
    text = repr(value)
    # YAML 1.1 reads an exponent without a dot (1e-05) as a string.
    if "e" in text and "." not in text:
        text = text.replace("e", ".0e")
    return text


def _scalar(value: Any) -> str:
    if isinstance(value, dict | list) and not value:
        return "{}" if isinstance(value, dict) else "[]"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _float(value)
    if value is None:
        return "null"
    if isinstance(value, str):
        return _quote(value)
    raise TypeError(f"cannot write {type(value).__name__} as YAML")


def _is_block(value: Any) -> bool:
    # A `|-` block cannot start with indentation, keep trailing spaces or a final newline
    # without extra indicators, and holds printable text only; other strings stay quoted.
    return (
        isinstance(value, str)
        and "\n" in value
        and not value[:1].isspace()
        and not value.endswith("\n")
        and _BLOCK_SAFE.match(value) is not None
        and all(line == line.rstrip() for line in value.split("\n"))
    )


def _emit(value: Any, indent: int, out: list[str]) -> None:
    pad = " " * indent
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(item, dict | list) and item:
                out.append(f"{pad}{_key(key)}:")
                _emit(item, indent + 2, out)
            elif _is_block(item):
                out.append(f"{pad}{_key(key)}: |-")
                out.extend(f"{pad}  {line}" if line else "" for line in item.split("\n"))
            else:
                out.append(f"{pad}{_key(key)}: {_scalar(item)}")
    elif isinstance(value, list):
        for item in value:
            if isinstance(item, dict | list) and item:
                sub: list[str] = []
                _emit(item, indent + 2, sub)
                sub[0] = f"{pad}- {sub[0][indent + 2 :]}"
                out.extend(sub)
            else:
                out.append(f"{pad}- {_scalar(item)}")
    else:
        out.append(f"{pad}{_scalar(value)}")


def dump(value: Any) -> str:
    """`value` (dicts, lists, str, int, float, bool, None) as a YAML document."""
    out: list[str] = []
    _emit(value, 0, out)
    return "\n".join(out) + "\n"
