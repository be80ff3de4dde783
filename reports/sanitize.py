"""Turn untrusted model output into plain text that is safe in both HTML and Markdown reports.

Why this exists: the chat model writes whatever its sampling produces, and a retrieved passage can
carry markup into a prompt that the model then echoes. Reports are published as HTML (Jinja2
autoescape covers that) *and* as Markdown, which is not escaped: a Markdown renderer would turn
`<script>`, `![x](http://tracker)` or `[click](javascript:...)` into live HTML. So the text we
store in `Paragraph.text` must already be plain prose. The rules, in order:

1. Chat-template leftovers: an end-of-turn marker (`<|im_end|>`, `<|endoftext|>`, `</s>`,
   `<human>:`) that follows real text ends the answer - whatever comes after it is the model
   inventing the next turn, so it is cut, not kept. Role headers (`<bot>:`,
   `<|im_start|>assistant`) and other `<|...|>` special tokens are dropped.
2. Markup: the content of script-like elements is dropped with the element; other tags, comments,
   doctypes and CDATA lose their angle-bracket syntax; block tags (`<p>`, `<br>`, `<li>`) become
   line breaks so paragraph structure survives.
3. Entities are unescaped, and 1-2 repeat until nothing changes, so `&lt;script&gt;` (or a
   double-encoded `&amp;lt;`) cannot smuggle a tag past step 2. Output is plain text; the HTML
   template escapes it again.
4. Control and format characters (C0/C1 controls, zero-width and bidi overrides) are removed.
5. Markdown that makes links or images loses its destination: `![alt](url)` -> `alt`,
   `[text](url)` -> `text`, a reference definition `[x]: url` at a paragraph start is broken,
   and a `<` that could still open raw HTML or an autolink gets a space after it. Plain
   citation markers such as `[1]` and `[2, 3]` are left exactly as written.
6. Whitespace inside a paragraph collapses to single spaces; paragraphs are separated by one
   blank line.

The function is idempotent: sanitizing sanitized text returns it unchanged, so renderers can
apply it again as a second line of defence without changing anything.
"""

from __future__ import annotations

import html
import re
import unicodedata

from rag.limits import MAX_MODEL_TEXT_CHARS

# -- chat template ---------------------------------------------------------------------------

# End of the model's turn: text after one of these (once the answer has begun) is a new turn.
_END_OF_TURN = re.compile(r"<\|im_end\|>|<\|endoftext\|>|<\|eot_id\|>|</s>|<\s*human\s*>\s*:", re.I)
# Role headers and remaining special tokens: dropped, the text around them kept.
_ROLE_HEADER = re.compile(
    r"<\|im_start\|>\s*(?:system|user|assistant|bot|human)?\s*:?|<\s*bot\s*>\s*:|<\|[^|<>\n]{0,40}\|>"
    r"|<s>",
    re.I,
)

# -- HTML markup -----------------------------------------------------------------------------

# Elements whose *content* is code or hidden, not prose: dropped whole. An unclosed one drops
# everything after it, as a browser would have swallowed that text too.
_DANGEROUS = r"script|style|iframe|object|embed|noscript|template|textarea|title|svg|math|xmp|noembed"
_DANGEROUS_ELEMENT = re.compile(rf"<({_DANGEROUS})\b[^>]*>.*?</\1\s*>", re.I | re.S)
_DANGEROUS_OPEN = re.compile(rf"<(?:{_DANGEROUS})\b.*\Z", re.I | re.S)
_COMMENT = re.compile(r"<!--.*?(?:-->|\Z)", re.S)
_CDATA = re.compile(r"<!\[CDATA\[.*?(?:\]\]>|\Z)", re.S)
_LINE_BREAK_TAG = re.compile(r"<br\s*/?\s*>", re.I)
_BLOCK_TAG = re.compile(
    r"</?(?:p|div|h[1-6]|li|ul|ol|tr|table|blockquote|section|article|header|footer|pre)\b[^>]*>",
    re.I,
)
# Any other tag, closing tag, doctype, processing instruction or autolink (`<javascript:...>`).
# As in HTML, a tag needs its name right after `<`: "a < b and c > d" is prose and stays.
_TAG = re.compile(r"</?[A-Za-z][^<>]*>|<![^<>]*>|<\?[^<>]*>")
# What is left of a tag opener after stripping (e.g. an unclosed `<img src=x onerror=...`).
_TAG_OPENER = re.compile(r"<(?=[A-Za-z/!?])")

# -- Markdown --------------------------------------------------------------------------------

_CITATION_BODY = r"\s*\d{1,4}(?:\s*[-\u2013]\s*\d{1,4})?(?:\s*[,;]\s*\d{1,4}(?:\s*[-\u2013]\s*\d{1,4})?)*\s*"
# A citation marker: "[1]", "[2, 3]", "[1-3]", "[4; 6-7]". Group 1 is the body inside the brackets.
CITATION_MARKER = re.compile(rf"\[({_CITATION_BODY})\]")
_MD_DEST = r"\((?:[^()]|\([^()]*\))*\)"  # "(url)", allowing one level of parentheses inside
_MD_IMAGE = re.compile(rf"!\[([^\[\]]*)\]{_MD_DEST}")
_MD_LINK = re.compile(rf"\[([^\[\]]*)\]{_MD_DEST}")
_MD_LINK_TAIL = re.compile(rf"\]{_MD_DEST}")  # a destination left after nested brackets
_MD_REF_DEF = re.compile(r"^(\s*\[[^\]]*\]):")

# -- characters and whitespace -----------------------------------------------------------------

_ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")  # terminal colour codes from tool output
_PARAGRAPH_BREAK = re.compile(r"\n[ \t]*\n\s*")
_WHITESPACE = re.compile(r"\s+")
_MAX_PASSES = 8  # decode/strip rounds; real text settles in 1-2, deeper nesting is an attack


def _drop_char(ch: str) -> bool:
    """True for characters that are never prose: controls (except newline/tab) and format chars."""
    if ch in "\n\t":
        return False
    return unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co")


def _strip_controls(text: str) -> str:
    text = _ANSI_ESCAPE.sub("", text)
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\u2028", "\n").replace("\u2029", "\n\n")
    return "".join(ch for ch in text if not _drop_char(ch))


def _cut_chat_template(text: str) -> str:
    """Cut at the first end-of-turn marker that follows content; drop role headers and tokens."""
    out = ""
    rest = text
    while True:
        match = _END_OF_TURN.search(rest)
        if match is None:
            out += rest
            break
        head = rest[: match.start()]
        if _ROLE_HEADER.sub("", out + head).strip():
            out += head
            break  # the answer ended here; what follows is a turn the model made up
        out += head
        rest = rest[match.end() :]
    return _ROLE_HEADER.sub("", out)


def _strip_markup(text: str) -> str:
    text = _COMMENT.sub("", text)
    text = _CDATA.sub("", text)
    text = _DANGEROUS_ELEMENT.sub("", text)
    text = _DANGEROUS_OPEN.sub("", text)
    text = _LINE_BREAK_TAG.sub("\n", text)
    text = _BLOCK_TAG.sub("\n\n", text)
    return _TAG.sub("", text)


def _keep_citation(match: re.Match[str]) -> str:
    """`[1](url)` keeps its marker `[1]`; any other link text stays, without brackets."""
    label = match.group(1)
    return f"[{label}]" if CITATION_MARKER.fullmatch(f"[{label}]") else label


def _neutralize_markdown(text: str) -> str:
    text = _MD_IMAGE.sub(lambda m: m.group(1), text)
    for _ in range(_MAX_PASSES):
        before = text
        text = _MD_LINK.sub(_keep_citation, text)
        text = _MD_LINK_TAIL.sub("]", text)
        if text == before:
            break
    return _TAG_OPENER.sub("< ", text)


def _collapse(text: str) -> list[str]:
    paragraphs = []
    for block in _PARAGRAPH_BREAK.split(text):
        para = _WHITESPACE.sub(" ", block).strip()
        if para:
            # `[x]: dest` opening a paragraph is a Markdown link reference definition.
            paragraphs.append(_MD_REF_DEF.sub(r"\1 :", para))
    return paragraphs


def sanitize_model_text(text: str) -> str:
    """Return `text` as plain prose paragraphs (joined by a blank line), safe for HTML and Markdown.

    See the module docstring for the rules. Citation markers (`[1]`, `[2, 3]`, `[1-3]`) survive.
    """
    text = text[:MAX_MODEL_TEXT_CHARS]  # runaway output: bound the work before the passes below
    for _ in range(_MAX_PASSES):
        before = text
        text = _strip_controls(text)
        text = _cut_chat_template(text)
        text = _strip_markup(text)
        text = html.unescape(text)
        if text == before:
            break
    else:  # still changing: strip once more so no decoded tag survives, leave entities as text
        text = _strip_markup(_cut_chat_template(_strip_controls(text)))
    text = _strip_controls(text)
    return "\n\n".join(_collapse(_neutralize_markdown(text)))


def sanitize_inline(text: str) -> str:
    """Sanitize and fold to one line: for titles, table cells, headings and other one-line slots."""
    return _WHITESPACE.sub(" ", sanitize_model_text(text)).strip()


def split_paragraphs(text: str) -> list[str]:
    """Split text on blank lines into paragraphs, whitespace inside each collapsed, empties dropped."""
    return _collapse(text.replace("\r\n", "\n").replace("\r", "\n"))


def _expand(body: str, max_range: int = 50) -> list[int]:
    """Numbers in one marker body: "2, 3" -> [2, 3]; "1-3" -> [1, 2, 3].

    A range longer than `max_range` (or reversed) keeps only its endpoints, so a hostile
    `[1-99999]` cannot make us allocate a huge list; the checks then flag the numbers as invalid.
    """
    numbers: list[int] = []
    for part in re.split(r"[,;]", body):
        bounds = [int(x) for x in re.split(r"[-\u2013]", part.strip())]
        if len(bounds) == 2 and 0 <= bounds[1] - bounds[0] <= max_range:
            numbers.extend(range(bounds[0], bounds[1] + 1))
        else:
            numbers.extend(bounds)
    return numbers


def extract_citations(paragraph: str) -> list[int]:
    """Citation numbers in order of first appearance, without repeats.

    Recognised forms: `[1]`, `[2, 3]` (also `;`), adjacent `[2][3]`, ranges `[1-3]` / `[1–3]`.
    Validity against the section's sources is the caller's job (see `Paragraph.invalid_citations`).
    """
    seen: dict[int, None] = {}
    for match in CITATION_MARKER.finditer(paragraph):
        for n in _expand(match.group(1)):
            seen.setdefault(n, None)
    return list(seen)
