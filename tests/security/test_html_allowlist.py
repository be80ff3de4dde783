"""The nh3 allow-list post-pass (reports/page_clean.py): planted markup never reaches a page, normal
pages come out byte for byte as the template rendered them, verified chart SVG is kept."""

from __future__ import annotations

import logging

import pytest
from markupsafe import Markup

from reports.model import Paragraph, RunEntry, RunSummary
from reports.page_clean import clean_fragment, clean_page, tokens
from reports.render import _report_context, get_environment, render_html, render_index, run_entry
from tests.reports.test_render import make_report, para

PAYLOADS = [
    "<script>alert('p1')</script>",
    "<img src=x onerror=alert('p2')>",
    '<a href="javascript:alert(\'p3\')">click</a>',
    '<iframe src="https://evil.example/frame"></iframe>',
    "<svg onload=alert('p4')><circle r=9></circle></svg>",
]
BAD_TAGS = {"script", "img", "iframe", "object", "embed", "circle", "style", "math"}


def assert_inert(html: str, svg_allowed: int = 0) -> None:
    """No tag, attribute or URL scheme outside the allow-list in the page body."""
    toks = tokens(html[html.find("<body>"):])
    tags = [t[1] for t in toks if t[0] == "start"]
    assert not BAD_TAGS & set(tags), BAD_TAGS & set(tags)
    assert tags.count("svg") == svg_allowed
    attrs = [a for t in toks if t[0] == "start" for a in t[2]]
    assert not [a for a in attrs if a[0].startswith("on")]
    assert not [a for a in attrs if a[0] == "href" and not a[1].startswith(("http://", "https://", "#"))
                and ":" in a[1]]
    assert 'href="javascript:' not in html.lower()  # as text (an unlinkable source URL) it is inert


def planted_report():
    """Payloads in model text, a source's title and excerpt, a news-like headline item, a warning."""
    report = make_report()
    sources = list(report.sources)
    sources[0] = sources[0].model_copy(update={"title": "10-K " + " ".join(PAYLOADS), "excerpt": PAYLOADS[1]})
    sources[1] = sources[1].model_copy(update={"title": "Apple news " + PAYLOADS[0], "excerpt": PAYLOADS[3]})
    report.sources[:] = sources
    section = report.sections[0]
    for payload in PAYLOADS:
        section.paragraphs.append(para(f"Model wrote {payload} here [1].", {1, 2}))
        section.paragraphs.append(Paragraph(text=f"Raw {payload} unsanitized [1]", citations=[1], cited=True))
        section.paragraphs.append(Paragraph(text=f"Apple headline {payload} [2]", citations=[2], cited=True,
                                            origin="code", kind="item"))
    report.warnings.append("feed said " + PAYLOADS[4])
    return report


def test_planted_markup_never_reaches_report_or_index():
    report = planted_report()
    html = render_html(report)
    assert_inert(html, svg_allowed=len(_report_context(report)["charts"]))
    assert "Model wrote" in html and "Apple headline" in html  # the text is there, the markup not
    run = RunSummary(run_id="r", as_of="2024-11-01", model="m", generated_at="g", entries=[
        run_entry(report, md="AAPL.md", html="AAPL.html"),
        RunEntry(ticker="EVIL", company="Evil " + " ".join(PAYLOADS), status="failed", error=PAYLOADS[1]),
    ])
    assert_inert(render_index(run))


def test_normal_pages_are_byte_identical_to_the_template_output():
    # quotes, apostrophes, ampersands and a no-break space: nh3 would serialise them differently,
    # so identity here shows the token comparison, not a lucky serialisation
    report = make_report()
    report.sections[0].paragraphs.append(
        para('Apple\'s "Services" & Mac\u00a0sales rose [1]; R&D > $30 billion < $40 billion [2].', {1, 2}))
    context = _report_context(report)
    raw = get_environment().get_template("report.html.j2").render(**context)
    body = raw[raw.find("<body>") + 6:raw.rfind("</body>")]
    assert clean_fragment(body) != body  # nh3's own bytes differ ...
    assert render_html(report) == raw  # ... yet the page is returned exactly as rendered
    run = RunSummary(run_id="r", as_of="2024-11-01", model="m", generated_at="g",
                     entries=[run_entry(report, md="AAPL.md", html="AAPL.html")],
                     totals={"tickers": 1}, timings={"generate": 1.5})
    assert render_index(run) == get_environment().get_template("index.html.j2").render(run=run)


def test_post_pass_catches_markup_a_template_let_through(monkeypatch, caplog):
    # simulate a template/filter bug: `plain` marks untrusted text safe instead of sanitizing it
    env = get_environment()
    monkeypatch.setitem(env.filters, "plain", lambda text: Markup(str(text)))
    html_before = env.get_template("report.html.j2").render(**_report_context(planted_report()))
    assert "<script>" in html_before and "onerror" in html_before  # the bug is real
    with caplog.at_level(logging.WARNING, logger="reports.page_clean"):
        html = render_html(planted_report())
    assert_inert(html, svg_allowed=len(_report_context(make_report())["charts"]))
    assert "allow-list removed markup" in caplog.text


def test_clean_page_keeps_trusted_svg_and_strips_any_other():
    chart = '<svg viewBox="0 0 10 10" role="img"><title>Revenue</title><rect x="1" y="1" width="2" height="3"/></svg>'
    page = (f'<!doctype html><html><head><style>p{{color:red}}</style></head><body><main><figure>{chart}'
            f'</figure><p class="x">ok <a href="https://a.example/" rel="noopener noreferrer">a</a> '
            f'<a href="#src-1">1</a> <a href="AAPL.html">r</a></p>{PAYLOADS[4]}{PAYLOADS[2]}'
            f'<p onclick="x()" style="color:red">t</p></main></body></html>')
    out = clean_page(page, trusted=[chart])
    assert chart in out and out.count("<svg") == 1  # ours byte for byte; the planted one gone
    assert "<style>p{color:red}</style>" in out  # the head is template text, left alone
    for gone in ("onload", "onclick", "javascript:", "circle", 'style="'):
        assert gone not in out, gone
    for kept in ('href="https://a.example/"', 'href="#src-1"', 'href="AAPL.html"', 'rel="noopener noreferrer"'):
        assert kept in out, kept
    clean = page.replace(PAYLOADS[4], "").replace(PAYLOADS[2], "").replace(' onclick="x()" style="color:red"', "")
    assert clean_page(clean, trusted=[chart]) == clean


def test_page_without_body_is_an_error():
    with pytest.raises(ValueError, match="no <body>"):
        clean_page("<p>fragment</p>")
