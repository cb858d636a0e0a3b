"""What users upload, read as they would expect: the kind by content and name, text, title, section paths, and a
clear refusal for what holds no usable text."""

from itertools import pairwise

import pytest

from rag.chunking import CHUNK_TOKENS, chunks_of
from rag.embedding import embedder
from rag.extraction import HTML, MARKDOWN, PDF, TEXT, ExtractionError, extract
from rag.tests.documents import damaged_pdf, encrypted_pdf, pdf_with_text, pdf_without_text


def test_plain_text_in_utf8_and_in_a_legacy_encoding():
    kind, extracted = extract("notes.txt", "Café au lait, crème brûlée.".encode())
    assert (kind, extracted.text, extracted.title) == (TEXT, "Café au lait, crème brûlée.", "notes")
    legacy = ("Grüße aus München. " * 20).encode("cp1252")
    assert extract("old.txt", legacy)[1].text.startswith("Grüße aus München.")


def test_markdown_headings_become_section_paths():
    text = "# Guide\n\nIntro.\n\n## Install\n\nRun it.\n\n### On Linux\n\napt.\n\n## Use\n\nCall it.\n"
    kind, extracted = extract("guide.md", text.encode())
    assert kind == MARKDOWN
    assert extracted.title == "Guide"
    assert extracted.section_at(text.index("apt.")) == "Guide > Install > On Linux"
    assert extracted.section_at(text.index("Call it.")) == "Guide > Use"


def test_html_loses_scripts_and_keeps_headings_and_title():
    page = (
        "<!doctype html><html><head><title>Pricing</title><style>p{}</style></head><body>"
        "<h1>Plans</h1><p>Starter costs $29.</p><script>alert('x')</script><h2>Enterprise</h2><p>Call us.</p>"
        "</body></html>"
    )
    kind, extracted = extract("pricing.html", page.encode())
    assert kind == HTML
    assert extracted.title == "Pricing"
    assert "alert" not in extracted.text
    assert "Starter costs $29." in extracted.text
    assert extracted.section_at(extracted.text.index("Call us.")) == "Plans > Enterprise"


def test_pdf_text_pages_and_title():
    data = pdf_with_text([["Lift and drag"], ["Boundary layers"]], title="Aerodynamics")
    kind, extracted = extract("paper.pdf", data)
    assert kind == PDF
    assert extracted.title == "Aerodynamics"
    assert "Lift and drag" in extracted.text
    assert extracted.section_at(extracted.text.index("Boundary layers")) == "Page 2"


@pytest.mark.parametrize(
    ("name", "data", "reason"),
    [
        ("secret.pdf", encrypted_pdf(), "password"),
        ("scan.pdf", pdf_without_text(), "no text layer"),
        ("broken.pdf", damaged_pdf(), "damaged"),
        ("empty.txt", b"", "empty"),
        ("blank.md", b"   \n\n ", "no text"),
        ("fake.pdf", b"just text", "not a PDF"),
        ("report.txt", pdf_with_text([["x"]]), "binary"),
        ("photo.png", b"\x89PNG\r\n", "not supported"),
    ],
)
def test_unusable_files_are_refused_with_the_reason(name, data, reason):
    with pytest.raises(ExtractionError, match=reason):
        extract(name, data)


def test_chunks_fit_the_model_overlap_and_carry_their_section():
    body = " ".join(f"Sentence {n} explains one more detail of the wing's boundary layer." for n in range(200))
    text = f"# Wings\n\n## Boundary layer\n\n{body}\n"
    _kind, extracted = extract("wings.md", text.encode())
    pieces = chunks_of(extracted, embedder())
    assert len(pieces) > 5
    assert all(piece.token_count <= CHUNK_TOKENS for piece in pieces)
    assert all(extracted.text[piece.start : piece.end] == piece.text for piece in pieces)
    assert all(later.start < earlier.end for earlier, later in pairwise(pieces))  # overlap
    assert pieces[-1].heading_path == "Wings > Boundary layer"
