"""The HTML part of an email written as text only (a language or a merchant template without
an ``.html`` file): the rendered text, read back into the parts ``base.html`` lays out.

The text follows ``base.txt``: the greeting, the body's paragraphs, the button's label with
the link and a note, the help line, and the signature after ``-- ``. Body lines that start
with ``- `` become a list; the support address becomes a ``mailto:`` link.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from markupsafe import Markup, escape


@dataclass(frozen=True)
class HtmlParts:
    greeting: str = ""
    body: Markup = field(default_factory=Markup)
    button: str = ""
    link_note: str = ""
    help: Markup = field(default_factory=Markup)
    footer: str = ""


def _linked(text: str, support_email: str, accent: str) -> Markup:
    escaped = escape(text)
    if not support_email:
        return Markup(escaped)
    link = Markup('<a href="mailto:{0}" style="color:{1};">{0}</a>').format(support_email, accent)
    return Markup(escaped.replace(escape(support_email), link))


def _block(paragraph: str, support_email: str, accent: str) -> Markup:
    lines = paragraph.splitlines()
    lead = lines[:1] if not lines[0].startswith("- ") else []
    listed = lines[len(lead) :]
    if listed and all(line.startswith("- ") for line in listed):
        items = Markup("\n").join(
            Markup("<li>{}</li>").format(_linked(ln[2:], support_email, accent)) for ln in listed
        )
        head = _block(lead[0], support_email, accent) + "\n" if lead else Markup()
        return head + Markup("<ul>\n{}\n</ul>").format(items)
    joined = Markup("<br>\n").join(_linked(line, support_email, accent) for line in lines)
    return Markup("<p>{}</p>").format(joined)


def html_parts(text: str, update_url: str | None, support_email: str, accent: str) -> HtmlParts:
    """Split a rendered text email into the parts of its HTML layout."""
    paragraphs = [p for p in text.strip("\n").split("\n\n") if p.strip()]
    footer = ""
    if paragraphs and paragraphs[-1].startswith("-- \n"):
        footer = "\n".join(paragraphs.pop().splitlines()[2:])
    greeting = paragraphs.pop(0) if paragraphs else ""
    button = note = ""
    for i, paragraph in enumerate(paragraphs):
        lines = paragraph.splitlines()
        if update_url and len(lines) >= 2 and lines[1] == update_url:
            # "Update my card:", or in French with a no-break space before the colon
            button, note = lines[0].removesuffix(":").rstrip(), " ".join(lines[2:])
            help_lines = paragraphs[i + 1 :]
            paragraphs = paragraphs[:i]
            break
    else:
        help_lines = paragraphs[-1:]
        paragraphs = paragraphs[:-1]
    return HtmlParts(
        greeting=greeting,
        body=Markup("\n").join(_block(p, support_email, accent) for p in paragraphs),
        button=button,
        link_note=note,
        help=Markup(" ").join(_linked(p, support_email, accent) for p in help_lines),
        footer=footer,
    )
