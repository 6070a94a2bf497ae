"""The README stays a quickstart: short, opening with the two set-up commands, free of commit hashes (they go stale
with every commit), and every relative link in it and in docs/ leads to a file that exists, so moving text between
them cannot leave a dead link behind. The docs name no commit either: measured figures are written, with their
commit and machine, by the tools that measure them into docs/generated/, and the docs link those files."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
DOCS_DIR = ROOT / "docs"
DOCS = sorted(DOCS_DIR.glob("*.md"))
GENERATED = DOCS_DIR / "generated"  # written by the tools, each file with the commit it was measured at
HASH_CHECKED_DOCS = sorted(
    doc for doc in DOCS_DIR.rglob("*.md")
    if GENERATED not in doc.parents
)
MAX_LINES = 120

# A word of 7 to 40 hex digits with at least one digit and one letter a-f: an abbreviated or full commit hash.
# Words of digits only (years, arXiv numbers) or of letters only ("deadbeef", "facade") are not hashes.
COMMIT_HASH = re.compile(r"\b(?=[0-9a-f]*[0-9])(?=[0-9a-f]*[a-f])[0-9a-f]{7,40}\b")
# Another repository's files pinned to its full commit, as docs/sources.md cites them (`owner/repo` @ `<40 hex>`):
# a source reference that does not go stale, not a figure of this project.
UPSTREAM_PIN = re.compile(r"`[\w.-]+/[\w.-]+`(?:\*\*)? @ `[0-9a-f]{40}`")
FENCE = re.compile(r"^```.*?^```[ \t]*$", re.MULTILINE | re.DOTALL)
CODE_SPAN = re.compile(r"(`+)(?:(?!\1).)+?\1", re.DOTALL)
INLINE_LINK = re.compile(r"\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE_LINK = re.compile(r"^ {0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)", re.MULTILINE)
SETUP = (
    re.compile(r"make repro +# \S.*"),
    re.compile(r"make test +# \S.*"),
)


def link_targets(text: str) -> list[str]:
    """Every inline or reference link target of a markdown text, outside code blocks and code spans (a path
    in code is text the reader types, not a link)."""
    prose = CODE_SPAN.sub("", FENCE.sub("", text))
    return INLINE_LINK.findall(prose) + REFERENCE_LINK.findall(prose)


def test_readme_is_short() -> None:
    """The README is a quickstart; the manual is docs/guide.md."""
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= MAX_LINES, f"README.md has {len(lines)} lines (at most {MAX_LINES}): move text to docs/"


def test_commit_hash_pattern() -> None:
    """The hash pattern flags hashes and leaves ordinary words and numbers alone."""
    flagged = "at commit 09dfcf8, and 2b394fa; full 4de2c38f0a1b2c3d4e5f60718293a4b5c6d7e8f9"
    kept = "deadbeef facade 1803.09820 10000 sha256 e2e 5e-4 1e-4 a1b2c3 abc_1234567"
    assert COMMIT_HASH.findall(flagged) == ["09dfcf8", "2b394fa", "4de2c38f0a1b2c3d4e5f60718293a4b5c6d7e8f9"]
    assert COMMIT_HASH.findall(kept) == []
    pinned = "**`lnsmith54/hyperParam1`** @ `c5dd3de5b6be6ab29bc02dd7fbaf484a72ce01f6` and `a/b` @ `c5dd3de`"
    assert COMMIT_HASH.findall(UPSTREAM_PIN.sub("", pinned)) == ["c5dd3de"]


def test_readme_has_no_commit_hash() -> None:
    """A commit named in the README goes stale with the next commit; figures tied to a commit belong in docs/."""
    hashes = COMMIT_HASH.findall(README.read_text(encoding="utf-8"))
    assert not hashes, f"README.md names commits {hashes}: link the doc that holds the figure instead"


@pytest.mark.parametrize("doc", HASH_CHECKED_DOCS, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_docs_have_no_commit_hash(doc: Path) -> None:
    """A figure tied to a commit goes stale with the next one: the tool that measures it writes it, with its commit
    and machine, under docs/generated/, and the doc links that file. The whole text is checked, code blocks
    included: example output that names a commit goes stale too."""
    hashes = COMMIT_HASH.findall(UPSTREAM_PIN.sub("", doc.read_text(encoding="utf-8")))
    assert not hashes, (f"{doc.relative_to(ROOT)} names commits {hashes}: say what to run to measure the figure, "
                        "and link the file under docs/generated/ that the tool writes")


def test_readme_opens_with_the_two_setup_commands() -> None:
    """A reader sees how to reproduce and how to test before anything else: right after the title, one code block
    of exactly `make repro` and `make test`, each with its comment."""
    text = README.read_text(encoding="utf-8")
    lines = [line for line in text.splitlines() if line.strip()]
    assert lines[0].startswith("# "), "README.md starts with its title"
    assert lines[1].startswith("```"), "the set-up block comes right after the title"
    block = FENCE.search(text)
    assert block is not None, "README.md has no code block"
    body = block.group(0).splitlines()[1:-1]
    assert len(body) == len(SETUP), f"the first code block is {body}, not the two set-up commands"
    for line, pattern in zip(body, SETUP, strict=True):
        assert pattern.fullmatch(line), f"{line!r} is not `{pattern.pattern}`"


@pytest.mark.parametrize("doc", [README, *DOCS], ids=lambda p: p.relative_to(ROOT).as_posix())
def test_relative_links_resolve(doc: Path) -> None:
    """A relative link leads to a file that exists (web links and in-page anchors are not checked)."""
    dead = []
    for target in link_targets(doc.read_text(encoding="utf-8")):
        if re.match(r"[a-z][a-z0-9+.-]*:", target, re.IGNORECASE) or target.startswith("#"):
            continue
        path = target.split("#", 1)[0]
        if not (doc.parent / path).exists():
            dead.append(target)
    assert not dead, f"{doc.relative_to(ROOT)} links to missing files: {dead}"
