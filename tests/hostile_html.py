"""Values that would be markup or script if a page printed them unescaped, and a parser that
shows a page's tags and text as a browser's parser sees them."""

from __future__ import annotations

from html.parser import HTMLParser

SCRIPT = "<script>window.pwned=1</script>"
IMG = '"><img src=x onerror=window.pwned=2>'
QUOTE = "'><a href=javascript:alert(1)>x</a>"


class Collect(HTMLParser):
    """Tags, attributes and text of a page, as a browser's parser sees them."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)
