"""A small, deterministic YAML writer for the rule files (plain Python, no dependencies).

It writes dicts in insertion order, lists of dicts, and scalars; multi-line strings become
literal blocks so PromQL stays readable, every other string is double-quoted.
"""

from __future__ import annotations

import json
import re
from typing import Any

__all__ = ["dump"]

_PLAIN_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")


def _key(key: str) -> str:
    return key if _PLAIN_KEY.match(key) else json.dumps(key, ensure_ascii=False)


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return json.dumps(value)
    if value is None:
        return "null"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    raise TypeError(f"cannot write {type(value).__name__} as YAML")


def _is_block(value: Any) -> bool:
    # A literal block cannot start with indentation or carry trailing spaces without an
    # explicit indicator; such strings stay quoted.
    return (
        isinstance(value, str)
        and "\n" in value
        and not value[:1].isspace()
        and all(line == line.rstrip() for line in value.split("\n"))
    )


def _emit(value: Any, indent: int, out: list[str]) -> None:
    pad = " " * indent
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(item, dict | list) and item:
                out.append(f"{pad}{_key(key)}:")
                _emit(item, indent + 2, out)
            elif isinstance(item, dict):
                out.append(f"{pad}{_key(key)}: {{}}")
            elif isinstance(item, list):
                out.append(f"{pad}{_key(key)}: []")
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
