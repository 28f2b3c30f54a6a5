"""The repository carries every document it cites.

Code, help texts, tests, the policy file and the docs may point a reader at a document only if
that document is in the repository: a Markdown file that exists (relative to the citing file or
to the root), a numbered section (``§N``) that the cited document has, a link target and
anchor that resolve, and a repository path (in backquotes) that exists.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TEXT_SUFFIXES = {".py", ".md", ".toml", ".txt", ".html", ".cfg", ".ini", ".yml", ".yaml", ".sh"}
TEXT_NAMES = {"Dockerfile", "run", "setup", "test", "demo"}
SKIP_PARTS = {".git", ".venv", "node_modules", "var", "reliability-results", "dunning.egg-info"}

# Documents outside the repository, by how they tend to be cited.
OUTSIDE = re.compile(r"\.\./shared|/work/shared|\bspec/scenario\.md|\bseeds?/|\bseed \d{3}\b")
DOC_NAME = re.compile(r"(?<![\w./-])((?:\.{1,2}/)*(?:[\w-]+/)*[\w-]+\.md)\b")
SECTION = re.compile(r"§(\d+)(?:\s*-\s*(\d+))?")
LINK = re.compile(r"\]\(([^)\s]+)\)")
HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*$", re.MULTILINE)
REPO_DIRS = ("bench", "config", "docs", "dunning", "schedules", "scripts", "templates", "tests",
             "workers")  # fmt: skip
REPO_PATH = re.compile(r"`((?:" + "|".join(REPO_DIRS) + r")/[\w./-]*)`")


def _tracked() -> list[Path]:
    try:
        out = subprocess.run(
            ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
            cwd=ROOT,
            capture_output=True,
            check=True,
            timeout=30,
        ).stdout.decode()
        names = [n for n in out.split("\0") if n]
    except (OSError, subprocess.CalledProcessError):
        names = [p.relative_to(ROOT).as_posix() for p in ROOT.rglob("*") if p.is_file()]
    return [ROOT / n for n in sorted(set(names))]


def _texts(paths: list[Path] | None = None) -> Iterator[tuple[Path, str]]:
    for path in _tracked() if paths is None else paths:
        rel = Path(_rel(path))
        if SKIP_PARTS & set(rel.parts) or not path.is_file():
            continue
        if path.suffix not in TEXT_SUFFIXES and path.name not in TEXT_NAMES:
            continue
        if path == Path(__file__).resolve():
            continue  # this file names the patterns it refuses
        yield path, path.read_text(encoding="utf-8", errors="replace")


def _resolve(citing: Path, name: str) -> Path | None:
    for base in (citing.parent, ROOT):
        candidate = (base / name).resolve()
        if candidate.is_file() and candidate.is_relative_to(ROOT):
            return candidate
    return None


def slug(heading: str) -> str:
    """A heading's anchor as GitHub makes it: lower case, punctuation dropped, spaces to -."""
    text = re.sub(r"[`*_]", "", heading.strip().lower())
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def _sections(doc: Path) -> set[int]:
    numbers = set()
    for heading in HEADING.findall(doc.read_text(encoding="utf-8")):
        match = re.match(r"(\d+)\.\s", heading)
        if match:
            numbers.add(int(match.group(1)))
    return numbers


def _line(text: str, index: int) -> int:
    return text.count("\n", 0, index) + 1


def _rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix() if path.is_relative_to(ROOT) else path.as_posix()


def cited_problems(paths: list[Path] | None = None) -> list[str]:
    """Every citation of something the repository does not carry, as ``file:line: what``
    (in ``paths``, default every file of the repository)."""
    problems = []
    for path, text in _texts(paths):
        where = _rel(path)
        for match in OUTSIDE.finditer(text):
            problems.append(f"{where}:{_line(text, match.start())}: cites {match.group(0)!r}")
        docs = []
        for match in DOC_NAME.finditer(text):
            found = _resolve(path, match.group(1))
            if found is None:
                problems.append(
                    f"{where}:{_line(text, match.start())}: cites {match.group(1)}, not here"
                )
            else:
                docs.append(found)
        problems += _section_problems(path, text, docs)
        if path.suffix == ".md":
            problems += _link_problems(path, text)
            problems += [
                f"{where}:{_line(text, m.start())}: names {m.group(1)}, which does not exist"
                for m in REPO_PATH.finditer(text)
                if not (ROOT / m.group(1).rstrip("/")).exists()
            ]
    return problems


def _section_problems(path: Path, text: str, docs: list[Path]) -> list[str]:
    """A ``§N`` must be a numbered section of a document the same file names."""
    if path.suffix == ".md" and path.is_relative_to(ROOT / "docs"):
        docs = [*docs, path]  # a document's own sections
    known: set[int] = set()
    for doc in docs:
        if doc.suffix == ".md":
            known |= _sections(doc)
    problems = []
    for match in SECTION.finditer(text):
        first = int(match.group(1))
        last = int(match.group(2) or first)
        missing = [n for n in range(first, last + 1) if n not in known]
        if missing:
            problems.append(
                f"{_rel(path)}:{_line(text, match.start())}: cites {match.group(0)}, which no "
                "document named in this file has"
            )
    return problems


def _link_problems(path: Path, text: str) -> list[str]:
    problems = []
    for match in LINK.finditer(text):
        target = match.group(1)
        if re.match(r"[a-z]+:", target):
            continue  # http:, https:, mailto:
        name, _, anchor = target.partition("#")
        doc = _resolve(path, name) if name else path
        where = f"{_rel(path)}:{_line(text, match.start())}"
        if doc is None and not (name and (path.parent / name).resolve().is_dir()):
            problems.append(f"{where}: links to {name}, which does not exist")
        elif doc is not None and anchor and doc.suffix == ".md":
            anchors = {slug(h) for h in HEADING.findall(doc.read_text(encoding="utf-8"))}
            if anchor not in anchors:
                problems.append(f"{where}: links to {target}, which has no such heading")
    return problems


def test_the_scan_reads_code_tests_docs_and_the_policy_file() -> None:
    seen = {_rel(p) for p, _ in _texts()}
    assert {"config/policy.toml", "dunning/cli/simulate.py", "docs/operations.md"} <= seen
    assert any(name.startswith("tests/unit/") for name in seen)


def test_every_cited_document_is_in_the_repository() -> None:
    problems = cited_problems()
    assert not problems, "cited but not carried:\n" + "\n".join(problems)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("see DOMAIN.md §2", "cites DOMAIN.md, not here"),
        ("format: spec/scenario.md", "cites 'spec/scenario.md'"),
        ("as in ../shared/DESIGN.md", "cites '../shared'"),
        ("seed 001 says so", "cites 'seed 001'"),
        ("docs/declines-and-network-rules.md §42", "cites §42"),
        ("[x](docs/operations.md#no-such-heading)", "has no such heading"),
        ("[x](docs/absent.md)", "absent.md"),
        ("`dunning/no_such_module.py`", "does not exist"),
    ],
)
def test_the_scan_finds_each_kind_of_bad_citation(text: str, expected: str, tmp_path: Path) -> None:
    # given a Markdown file with one bad citation
    bad = tmp_path / "probe.md"
    bad.write_text(f"# Probe\n\n{text}\n", encoding="utf-8")
    # when it is scanned, then that citation is reported
    problems = cited_problems([bad])
    assert any(expected in p for p in problems), problems
