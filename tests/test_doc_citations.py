"""Every document that code, tests and docs cite is in the repository (docs/design/README.md).

A citation is a ``*.md`` path (``docs/reference/kurento-protocol.md 7.1``), resolved against the
citing file's folder (Markdown links) or the repository root, or a Node-RED case id (``SW-04``),
which must be a case of docs/reference/nodered-cases.md named by the citing file.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CASES = ROOT / "docs" / "reference" / "nodered-cases.md"
SCANNED = ("flowengine", "nodes", "tests", "tools", "bench", "flows", "examples", "docs",
           "README.md")
SUFFIXES = {".py", ".js", ".md", ".yaml", ".yml", ".toml", ".sh", ".html", ".css", ".sql"}
SKIPPED_FOLDERS = {"vendor", "__pycache__", "node_modules"}

#: A path ending in ``.md`` that is not part of a longer path or a URL (``a.md()`` in minified
#: JavaScript is not a citation either, nor a Markdown link's text: its target is checked);
#: ``-o FILE.md`` names a file a command writes, ``ROOT / "FILE.md"`` one the code reads.
CITATION = re.compile(r"(?<![\w$@./\-])(?<!-o )(?<!/ \")"
                      r"((?:\.\./)*(?:[\w.\-]+/)*[\w\-]+\.md)\b(?![(\]])")
#: Where the documents used to be: a clone does not have it.
OUTSIDE = re.compile(r"shared/(?:design|reference)/")


def case_id_pattern() -> re.Pattern[str]:
    """Case ids with the prefixes the cases document uses (``**SW-04 ...``), declared there."""
    prefixes = sorted(set(re.findall(r"\*\*([A-Z]{2})-\d{2}\b", CASES.read_text())))
    return re.compile(rf"\b(?:{'|'.join(prefixes)})-\d{{2}}\b")


def scanned_files(root: Path = ROOT) -> Iterator[Path]:
    for name in SCANNED:
        top = root / name
        candidates = [top] if top.is_file() else sorted(top.rglob("*"))
        for path in candidates:
            if (path.is_file() and path.suffix in SUFFIXES
                    and not SKIPPED_FOLDERS & set(path.relative_to(root).parts)):
                yield path


def missing_documents(path: Path, root: Path = ROOT) -> list[str]:
    """The citations in ``path`` that name no document of the repository."""
    text = path.read_text(encoding="utf-8", errors="replace")
    problems = [f"cites {m.group(0)!r}: the documents are in docs/design and docs/reference"
                for m in OUTSIDE.finditer(text)]
    for match in CITATION.finditer(text):
        cited = match.group(1)
        if not ((path.parent / cited).is_file() or (root / cited).is_file()):
            line = text.count("\n", 0, match.start()) + 1
            problems.append(f"line {line}: {cited} is not in the repository")
    return problems


def unknown_cases(path: Path, known: set[str], ids: re.Pattern[str]) -> list[str]:
    """Case ids in ``path`` that the cases document lacks, or that it cites without naming it."""
    text = path.read_text(encoding="utf-8", errors="replace")
    cited = set(ids.findall(text))
    problems = [f"case {case} is not in docs/reference/nodered-cases.md"
                for case in sorted(cited - known)]
    if cited and CASES.name not in text:
        problems.append(f"cites cases {', '.join(sorted(cited)[:3])}... without naming "
                        "docs/reference/nodered-cases.md")
    return problems


def test_every_cited_document_is_in_the_repository() -> None:
    problems = {str(path.relative_to(ROOT)): found for path in scanned_files()
                if (found := missing_documents(path))}
    assert problems == {}


def test_every_cited_case_is_in_the_cases_document() -> None:
    ids = case_id_pattern()
    known = set(ids.findall(CASES.read_text()))
    assert len(known) > 150  # the prefixes were found: SW-01..SW-31, CH-01..CH-22, ...
    problems = {str(path.relative_to(ROOT)): found for path in scanned_files()
                if path != CASES and (found := unknown_cases(path, known, ids))}
    assert problems == {}


def test_design_index_lists_every_document() -> None:
    index = (ROOT / "docs" / "design" / "README.md").read_text()
    documents = sorted(p.relative_to(ROOT / "docs") for p in (ROOT / "docs").glob("*/**/*.md")
                       if p.name != "README.md" or p.parent.name != "design")
    for document in documents:
        relative = Path("..") / document if document.parts[0] != "design" else document.name
        assert f"]({Path(relative).as_posix()})" in index, f"docs/design/README.md: {document}"


# -- the checks can fail ----------------------------------------------------------------------
# The bad citations below are put together at run time, so that this file cites nothing missing.

MD = ".md"


@pytest.mark.parametrize(("text", "expected"), [
    (f"(kurento-protocol{MD} 7.1)", [f"line 1: kurento-protocol{MD} is not in the repository"]),
    (f'see "docs/design/nowhere{MD}"',
     [f"line 1: docs/design/nowhere{MD} is not in the repository"]),
    (f"# /work/{'shared'}/reference/aiortc-notes{MD}",
     ["cites 'shared" + "/reference/': the documents are in docs/design and docs/reference"]),
    (f"(docs/reference/kurento-protocol{MD} 7.1), `flowrun docs -o my-nodes{MD}`, b{MD}()", []),
    (f"https://github.com/node-red/node-red/blob/master/CHANGELOG{MD}", []),
    (f"[runtime{MD}](../design/runtime{MD})", []),  # relative to the citing file
    (f'ROOT / "docs" / "nodes{MD}"', []),
    (f"[runtime{MD}](../design/nowhere{MD})",
     [f"line 1: ../design/nowhere{MD} is not in the repository"]),
])
def test_missing_documents(tmp_path: Path, text: str, expected: list[str]) -> None:
    (tmp_path / "docs" / "design").mkdir(parents=True)
    (tmp_path / "docs" / "design" / "runtime.md").write_text("# The runtime\n")
    (tmp_path / "docs" / "reference").mkdir()
    (tmp_path / "docs" / "reference" / "kurento-protocol.md").write_text("# KMS\n")
    citing = tmp_path / "docs" / "user" / "page.md"
    citing.parent.mkdir()
    citing.write_text(text)
    assert missing_documents(citing, tmp_path) == expected


@pytest.mark.parametrize(("text", "expected"), [
    ("cases SW-01..SW-24 (docs/reference/nodered-cases.md)", []),
    ("# WS-05: nothing to send", ["cites cases WS-05... without naming "
                                  "docs/reference/nodered-cases.md"]),
    ("SW-" + "99 in docs/reference/nodered-cases.md",
     ["case SW-" + "99 is not in docs/reference/nodered-cases.md"]),
])
def test_unknown_cases(tmp_path: Path, text: str, expected: list[str]) -> None:
    citing = tmp_path / "test_x.py"
    citing.write_text(text)
    ids = case_id_pattern()
    assert unknown_cases(citing, set(ids.findall(CASES.read_text())), ids) == expected
