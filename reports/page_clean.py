"""Allow-list post-pass over every rendered HTML page (nh3, i.e. Ammonia), byte-identical when clean.

Why a second layer: Jinja2 autoescape already turns untrusted text (model paragraphs, source
titles and excerpts, news headlines, error lines) into inert text, but the guarantee then rests on
every template expression and every `Markup` we build being right. This pass does not trust them:
the page's `<body>` goes through `nh3.clean` with an explicit allow-list of the tags and
attributes the templates use (`PAGE_TAGS`, `PAGE_ATTRIBUTES`), links limited to http/https and
relative targets, no `<script>`, `<style>`, `<iframe>`, `<img>`, `<svg>` or event handlers.

Design choice (clean the whole body, our SVG kept out of it): the verified chart SVG
(reports/charts.py `verified_charts`, built from numbers only) is the one piece of markup not on
the list; it is swapped for a random placeholder before cleaning and put back after, so an `<svg>`
anywhere else is stripped. The head (meta CSP, title, our inline `<style>`) is template text with
no markup from data in it and is left alone.

Why byte-identical: nh3 re-serialises (`<rect/>` -> `<rect></rect>`, `&#39;` -> `'`), and the
audit re-render (reports/audit_trail.py) compares published bytes. So the cleaned body is compared
with the original as token streams (tags, attributes, decoded text); equal means nh3 removed
nothing and the original bytes are returned; otherwise the cleaned body is used and a warning
names the first difference. Either way, what is written is what the sanitizer allows.
"""

from __future__ import annotations

import logging
import secrets
from html.parser import HTMLParser

import nh3

log = logging.getLogger(__name__)

# Every tag report.html.j2 / index.html.j2 write inside <body>, plus <mark> from cite_html.
PAGE_TAGS = {
    "main", "header", "footer", "section", "div", "figure", "figcaption",
    "h1", "h2", "h3", "p", "br", "span", "strong", "code", "mark", "data", "a",
    "ul", "li", "table", "thead", "tbody", "tr", "th", "td",
}  # fmt: skip
PAGE_ATTRIBUTES = {
    "*": {"class", "id", "title", "role", "aria-label"},
    "a": {"href"},
    "th": {"scope", "colspan"},
    "td": {"colspan"},
    "data": {"value"},
}
# `rel` is allowed with the one value the templates set, and nh3 adds none of its own (link_rel=None).
PAGE_ATTRIBUTE_VALUES = {"a": {"rel": {"noopener noreferrer"}}}
URL_SCHEMES = {"http", "https"}  # plus relative targets ("AAPL.html", "#src-1"): nh3 passes those
# Dropped with their content, not just unwrapped.
CONTENT_TAGS = {
    "script", "style", "template", "textarea", "noscript", "iframe", "object", "embed", "svg", "math",
}  # fmt: skip
_VOID = {"br", "hr", "img", "input", "meta", "link", "wbr", "source", "area", "base", "col", "embed", "param"}


def clean_fragment(html: str) -> str:
    """`html` through nh3 with the page allow-list (the serialisation is nh3's)."""
    return nh3.clean(
        html,
        tags=PAGE_TAGS,
        clean_content_tags=CONTENT_TAGS,
        attributes=PAGE_ATTRIBUTES,
        tag_attribute_values=PAGE_ATTRIBUTE_VALUES,
        url_schemes=URL_SCHEMES,
        link_rel=None,
        strip_comments=True,
    )


class _Tokens(HTMLParser):
    """A page as comparable tokens: ("start", tag, sorted attrs), ("end", tag), ("text", str)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tokens: list[tuple] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tokens.append(("start", tag, tuple(sorted((k, v or "") for k, v in attrs))))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag not in _VOID:  # <rect/> and <rect></rect> are the same element
            self.tokens.append(("end", tag))

    def handle_endtag(self, tag: str) -> None:
        self.tokens.append(("end", tag))

    def handle_data(self, data: str) -> None:
        if self.tokens and self.tokens[-1][0] == "text":
            self.tokens[-1] = ("text", self.tokens[-1][1] + data)
        else:
            self.tokens.append(("text", data))

    def handle_comment(self, data: str) -> None:
        self.tokens.append(("comment", data))

    def handle_decl(self, decl: str) -> None:
        self.tokens.append(("decl", decl))

    def handle_pi(self, data: str) -> None:
        self.tokens.append(("pi", data))

    def unknown_decl(self, data: str) -> None:
        self.tokens.append(("decl", data))


def tokens(html: str) -> list[tuple]:
    parser = _Tokens()
    parser.feed(html)
    parser.close()
    return parser.tokens


def clean_page(page: str, trusted: list[str] | tuple[str, ...] = ()) -> str:
    """`page` with its `<body>` passed through the allow-list; `trusted` fragments (verified chart
    SVG, exact strings) are kept out of the cleaning. Returns `page` itself when nothing was removed."""
    start, end = page.find("<body>"), page.rfind("</body>")
    if start < 0 or end < start:
        raise ValueError("rendered page has no <body>...</body>: the template changed")
    start += len("<body>")
    body = page[start:end]
    nonce = secrets.token_hex(8)
    held = {f"researchdesk-trusted-{nonce}-{i}": f for i, f in enumerate(dict.fromkeys(trusted)) if f}
    for marker, frag in held.items():
        body = body.replace(frag, marker)
    cleaned = clean_fragment(body)
    before, after = tokens(body), tokens(cleaned)
    if before == after:
        return page
    diff = next((b for b, a in zip(before, after, strict=False) if b != a), before[len(after):][:1])
    log.warning("HTML allow-list removed markup from a rendered page; first difference near %.200r", diff)
    for marker, frag in held.items():
        cleaned = cleaned.replace(marker, frag)
    return page[:start] + cleaned + page[end:]
