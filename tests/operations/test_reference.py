"""docs/operations.md is the registry's own output, so the docs never drift from the code."""

from pathlib import Path

from stylefill.operations.reference import markdown


def test_docs_operations_is_current():
    path = Path(__file__).resolve().parents[2] / "docs" / "operations.md"
    assert path.read_text() == markdown(), (
        "regenerate it: .venv/bin/python -m stylefill.operations.reference > docs/operations.md")
