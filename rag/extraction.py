"""Text out of an uploaded file: what kind it really is (by content as well as by name), its text, its title and
where its sections start.

Kinds: plain text (charset detected), Markdown (headings give section paths), HTML (scripts and styles dropped,
converted to Markdown so headings survive), PDF (pypdf; encrypted, corrupt and image-only files are refused with
the reason). Every refusal is an `ExtractionError` whose message is shown to the user as is.
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from charset_normalizer import from_bytes
from markdown_it import MarkdownIt
from markdownify import markdownify
from selectolax.lexbor import LexborHTMLParser as HTMLParser

from core.errors import InvalidInput

logger = logging.getLogger(__name__)

TEXT = "text"
MARKDOWN = "markdown"
HTML = "html"
PDF = "pdf"
CONTENT_TYPES = {TEXT: "text/plain", MARKDOWN: "text/markdown", HTML: "text/html", PDF: "application/pdf"}
EXTENSIONS = {".txt": TEXT, ".text": TEXT, ".md": MARKDOWN, ".markdown": MARKDOWN, ".html": HTML, ".htm": HTML}
EXTENSIONS[".pdf"] = PDF
ALLOWED = ", ".join(sorted(EXTENSIONS))


class ExtractionError(InvalidInput):
    """The file is not one we can read (its kind, its encoding, its damage): answer 400 with the reason."""

    code = "unreadable_document"


@dataclass
class Extracted:
    text: str
    title: str = ""
    # (offset in `text`, heading path) at each heading, in order: a chunk's section is the last one at or before it.
    sections: list[tuple[int, str]] = field(default_factory=list)

    def section_at(self, offset: int) -> str:
        path = ""
        for start, heading_path in self.sections:
            if start > offset:
                break
            path = heading_path
        return path


def _looks_like_html(head: bytes) -> bool:
    start = head.lstrip()[:200].lower()
    return start.startswith((b"<!doctype html", b"<html")) or b"<html" in start


def kind_of(name: str, data: bytes) -> str:
    """The file's kind, when its name and its content agree; ExtractionError otherwise."""
    suffix = PurePosixPath(name.lower()).suffix
    claimed = EXTENSIONS.get(suffix)
    if claimed is None:
        raise ExtractionError(f"{name}: {suffix or 'no extension'} files are not supported. Upload {ALLOWED}.")
    if not data:
        raise ExtractionError(f"{name} is empty.")
    is_pdf = data.startswith(b"%PDF-")
    if claimed == PDF:
        if not is_pdf:
            raise ExtractionError(f"{name} is named .pdf but is not a PDF file.")
        return PDF
    if is_pdf or b"\x00" in data[:8192]:
        raise ExtractionError(f"{name} is named {suffix} but holds binary data (is it a PDF or an image?).")
    if claimed == HTML or (claimed == TEXT and _looks_like_html(data[:1024])):
        return HTML
    return claimed


def check(name: str, data: bytes) -> str:
    """The file's kind if ingestion will find text in it; ExtractionError with the reason otherwise. For an upload,
    before anything is stored: a PDF is read only up to its first page with text (ingestion reads it all)."""
    if kind_of(name, data) == PDF:
        _pdf(name, data, first_text_only=True)
        return PDF
    return extract(name, data)[0]  # text, Markdown and HTML are cheap to read whole


def extract(name: str, data: bytes) -> tuple[str, Extracted]:
    """(kind, extracted text) of a file; ExtractionError with the reason if it holds no usable text."""
    kind = kind_of(name, data)
    if kind == PDF:
        extracted = _pdf(name, data)
    else:
        text = _decode(name, data)
        if kind == HTML:
            extracted = _html(text)
        elif kind == MARKDOWN:
            extracted = _markdown(text)
        else:
            extracted = Extracted(text=text)
    extracted.text = extracted.text.strip("\ufeff")
    if not extracted.text.strip():
        raise ExtractionError(f"{name} contains no text.")
    if not extracted.title:
        extracted.title = PurePosixPath(name).stem
    return kind, extracted


def _decode(name: str, data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        best = from_bytes(data).best()
        if best is None:
            raise ExtractionError(f"{name}: the text encoding could not be recognised; save it as UTF-8.") from None
        return str(best)


def _markdown(text: str) -> Extracted:
    """Section paths from the Markdown headings (ATX and setext), at the offsets where they start."""
    lines = text.splitlines(keepends=True)
    line_starts = [0]
    for line in lines:
        line_starts.append(line_starts[-1] + len(line))
    tokens = MarkdownIt("commonmark").parse(text)
    stack: list[tuple[int, str]] = []
    sections: list[tuple[int, str]] = []
    title = ""
    for index, token in enumerate(tokens):
        if token.type != "heading_open" or token.map is None:
            continue
        level = int(token.tag[1:])
        heading = tokens[index + 1].content.strip() if index + 1 < len(tokens) else ""
        stack = [entry for entry in stack if entry[0] < level] + [(level, heading)]
        if level == 1 and not title:
            title = heading
        sections.append((line_starts[token.map[0]], " > ".join(entry[1] for entry in stack)))
    return Extracted(text=text, title=title, sections=sections)


def _html(text: str) -> Extracted:
    tree = HTMLParser(text)
    title = tree.css_first("title")
    for node in tree.css("script, style, noscript, template, svg, iframe"):
        node.decompose()
    body = tree.body.html if tree.body is not None else (tree.html or "")
    converted = _markdown(markdownify(body or "", heading_style="ATX", strip=["img"]).strip())
    if title is not None and title.text(strip=True):
        converted.title = title.text(strip=True)
    return converted


def _pdf(name: str, data: bytes, *, first_text_only: bool = False) -> Extracted:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            raise ExtractionError(f"{name} is password-protected. Upload it without the password.")
        pages: list[str] = []
        for pdf_page in reader.pages:
            pages.append(pdf_page.extract_text() or "")
            if first_text_only and pages[-1].strip():
                break
        title = str(reader.metadata.get("/Title") or "").strip() if reader.metadata else ""
    except ExtractionError:
        raise
    except (PdfReadError, ValueError, KeyError, TypeError, OSError) as error:
        logger.info("rag.pdf_unreadable", extra={"document": name, "error": type(error).__name__})
        raise ExtractionError(f"{name} is damaged or not a valid PDF ({type(error).__name__}).") from error
    except Exception as error:  # pypdf raises many kinds on malformed input; all mean the same to the user
        if "encrypt" in str(error).lower() or "crypt" in type(error).__name__.lower():
            raise ExtractionError(f"{name} is encrypted in a way that cannot be opened.") from error
        raise ExtractionError(f"{name} is damaged or not a valid PDF ({type(error).__name__}).") from error
    if not "".join(pages).strip():
        raise ExtractionError(f"{name} has no text layer (a scanned PDF?). Upload a PDF with selectable text.")
    text = ""
    sections: list[tuple[int, str]] = []
    for number, page in enumerate(pages, start=1):
        sections.append((len(text), f"Page {number}"))
        text += page.strip() + "\n\n"
    return Extracted(text=text, title=title, sections=sections)
