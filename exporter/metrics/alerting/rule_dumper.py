"""Rule files as YAML: PyYAML's safe dumper with the layout Prometheus users read."""

from __future__ import annotations

import math
import re
from typing import Any, Final

import yaml

__all__ = ["RuleDumper", "dump"]

_STR: Final = "tag:yaml.org,2002:str"
# YAML 1.1 line breaks besides \n: a literal block would read them back as \n.
_OTHER_BREAKS: Final = re.compile("[\x85\u2028\u2029]")
_NAME: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*")


class RuleDumper(yaml.SafeDumper):
    """PyYAML's safe dumper as rule files are written: lists indented under their key, keys
    plain, every string double-quoted, multi-line ones (PromQL) as literal blocks."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)

    def ignore_aliases(self, data: Any) -> bool:
        return True  # a dict used twice is written twice, never as an anchor

    def represent_mapping(self, tag: str, mapping: Any, flow_style: bool | None = None) -> Any:
        node = super().represent_mapping(tag, mapping, flow_style)
        for key, _ in node.value:
            if _NAME.fullmatch(key.value):
                key.style = None  # plain, or quoted where YAML would read a bool or null
        return node

    def represent_text(self, text: str) -> yaml.ScalarNode:
        """Double-quoted, or a literal block (`|-`) for multi-line text; the emitter falls
        back to double quotes for text a block cannot hold (leading or trailing blanks)."""
        block = "\n" in text and not _OTHER_BREAKS.search(text)
        return self.represent_scalar(_STR, text, style="|" if block else '"')


RuleDumper.add_representer(str, RuleDumper.represent_text)


def dump(value: Any) -> str:
    """`value` (dicts, lists, str, int, float, bool, None) as a YAML document, keys in order."""
    return yaml.dump(value, Dumper=RuleDumper, sort_keys=False, allow_unicode=True, width=math.inf)
