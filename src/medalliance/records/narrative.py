"""Narrative XHTML (R4 narrative.html, invariant txt-1): a resource's ``text.div``
is stored as sent and rendered by any client that shows the record, so markup that could
run there (``<script>``, ``onclick``, ``javascript:`` links, forms, frames, objects) is
refused at the boundary rather than escaped by each reader. txt-2 (some text) is not
enforced: an empty generated div is harmless, common from HIS exports, and four official
R4 examples have one.

Parsed with the standard library's expat (a streaming XML parser: XHTML is XML); a
document type declaration is refused before expat reads it, so no entity is ever defined
or expanded (no entity-expansion attacks).
"""

from __future__ import annotations

import re
from typing import Final
from xml.parsers import expat

XHTML: Final = "http://www.w3.org/1999/xhtml"

# txt-1 as the R4 StructureDefinition of Narrative words it (its XPath lists both): the
# basic formatting elements of HTML 4.0 chapters 7-11 and 15, <a>, images, tables.
ELEMENTS: Final = frozenset({
    "a", "abbr", "acronym", "b", "big", "blockquote", "br", "caption", "cite", "code", "col",
    "colgroup", "dd", "dfn", "div", "dl", "dt", "em", "h1", "h2", "h3", "h4", "h5", "h6", "hr",
    "i", "img", "li", "ol", "p", "pre", "q", "samp", "small", "span", "strong", "sub", "sup",
    "table", "tbody", "td", "tfoot", "th", "thead", "tr", "tt", "ul", "var",
})  # fmt: skip
ATTRIBUTES: Final = frozenset({
    "abbr", "accesskey", "align", "alt", "axis", "bgcolor", "border", "cellhalign",
    "cellpadding", "cellspacing", "cellvalign", "char", "charoff", "charset", "cite", "class",
    "colspan", "compact", "coords", "dir", "frame", "headers", "height", "href", "hreflang",
    "hspace", "id", "lang", "longdesc", "name", "nowrap", "rel", "rev", "rowspan", "rules",
    "scope", "shape", "span", "src", "start", "style", "summary", "tabindex", "title", "type",
    "valign", "value", "vspace", "width",
})  # fmt: skip
# Attributes a browser follows or loads: only schemes that cannot run script in the page.
_URL_ATTRIBUTES: Final = frozenset({"href", "src", "cite", "longdesc"})
_SCHEMES: Final = frozenset({"http", "https", "ftp", "mailto", "tel", "urn"})
# Inline images (the official examples carry PNGs so); SVG may hold script, so it is not one.
_DATA_IMAGE: Final = re.compile(r"data:image/(png|gif|jpeg|webp|bmp)[;,]")
_SCHEME: Final = re.compile(r"([a-z][a-z0-9+.\-]*):")
# Browsers drop ASCII whitespace and controls inside a URL's scheme ("java\tscript:").
_IGNORED_IN_URL: Final = re.compile(r"[\x00-\x20\x7f]+")
_CSS_URL: Final = re.compile(r"url\(\s*['\"]?([^'\")]*)", re.IGNORECASE)
# CSS that runs code in some browser (IE expressions and behaviors, Mozilla bindings).
_CSS_SCRIPT: Final = re.compile(r"expression\s*\(|behavior\s*:|-moz-binding|javascript:", re.I)


class _Refused(Exception):
    pass


def problem(div: str) -> str | None:
    """Why the narrative breaks txt-1 (None: it does not)."""
    check = _Check()
    parser = expat.ParserCreate(namespace_separator=" ")
    parser.StartDoctypeDeclHandler = check.doctype
    parser.ProcessingInstructionHandler = check.instruction
    parser.StartElementHandler = check.element
    try:
        parser.Parse(div, True)
    except _Refused as refused:
        return str(refused)
    except expat.ExpatError as exc:
        return f"is not well-formed XHTML ({expat.ErrorString(exc.code)}, column {exc.offset})"
    return None


class _Check:
    """Expat's callbacks; each raises ``_Refused`` at the first thing not allowed."""

    def __init__(self) -> None:
        self.root = True

    def doctype(self, *_: object) -> None:
        raise _Refused("may not declare a document type (or entities)")

    def instruction(self, target: str, _: str) -> None:
        raise _Refused(f"may not hold a processing instruction (<?{target}?>)")

    def element(self, name: str, attributes: dict[str, str]) -> None:
        namespace, _, local = name.rpartition(" ")
        if namespace != XHTML:
            where = f"in the namespace {namespace}" if namespace else "in no namespace"
            raise _Refused(f"<{local}> is {where}; narrative is XHTML ({XHTML}) (txt-1)")
        if self.root and local != "div":
            raise _Refused(f"must be one <div> element, not <{local}>")
        self.root = False
        if local not in ELEMENTS:
            raise _Refused(f"may not contain <{local}>: only basic formatting elements (txt-1)")
        for attribute, value in attributes.items():
            _check_attribute(local, attribute, value)


def _check_attribute(element: str, attribute: str, value: str) -> None:
    if attribute not in ATTRIBUTES:  # event handlers (on*), namespaced ones (xlink:href)
        shown = attribute.replace(" ", ":")
        raise _Refused(f"<{element}> may not have the attribute {shown} (txt-1)")
    if attribute in _URL_ATTRIBUTES and not safe_url(value, image=attribute == "src"):
        raise _Refused(f"<{element} {attribute}> may not be {value[:60]!r}: not a safe URL")
    if attribute == "style":
        _check_style(element, value)


def _check_style(element: str, style: str) -> None:
    if _CSS_SCRIPT.search(style):
        raise _Refused(f"<{element} style> may not run script: {style[:60]!r}")
    for url in _CSS_URL.findall(style):
        if not safe_url(url, image=True):
            raise _Refused(f"<{element} style> may not load {url[:60]!r}: not a safe URL")


def safe_url(value: str, *, image: bool) -> bool:
    """A relative URL, one of the plain schemes, or (where an image is loaded) an inline
    raster image; never ``javascript:``, ``vbscript:``, ``data:text/html`` and the like."""
    url = _IGNORED_IN_URL.sub("", value).lower()
    scheme = _SCHEME.match(url)
    if scheme is None:
        return True  # relative ("#id", "Patient/1", "page.html"): same origin as the page
    if scheme.group(1) == "data":
        return image and _DATA_IMAGE.match(url) is not None
    return scheme.group(1) in _SCHEMES
