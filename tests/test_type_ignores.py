"""Every `# type: ignore` in the four packages names its error code and says why, on the same line.

`# type: ignore[arg-type]  # asyncua annotates its int/str subclasses` passes; a bare `# type: ignore`,
one without a code in brackets, or one without a `# reason` after it fails. mypy's
`warn_unused_ignores` (pyproject) removes the ones that no longer silence anything.
"""

from __future__ import annotations

import io
import re
import tokenize
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# The packages mypy checks (pyproject [tool.mypy] files): the same list, so the two cannot drift apart.
PACKAGES: list[str] = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mypy"]["files"]
_SOURCE = {".py", ".pyi"}
_IGNORE = re.compile(r"type:\s*ignore")
_GOOD = re.compile(r"#\s*type: ignore\[[a-z][a-z-]*(?:, ?[a-z][a-z-]*)*\] +#\s*\S")


def bad_ignores(source: str) -> list[tuple[int, str]]:
    """(line, comment) of each `type: ignore` comment without a code and a reason."""
    bad = []
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == tokenize.COMMENT and _IGNORE.search(tok.string) and not _GOOD.search(tok.string):
            bad.append((tok.start[0], tok.string))
    return bad


@pytest.mark.parametrize(
    ("line", "ok"),
    [
        ("x = f()  # type: ignore[arg-type]  # the stubs say int; str is valid\n", True),
        ("x = f()  # type: ignore[arg-type, misc]  # two codes, one reason\n", True),
        ("x = f()  # type: ignore\n", False),
        ("x = f()  # type: ignore  # a reason but no code\n", False),
        ("x = f()  # type: ignore[arg-type]\n", False),
        ("x = f()  # type: ignore[arg-type]  #\n", False),
        ("x = f()  # type: ignore[]  # empty code\n", False),
        ("x = f()  # type:ignore[arg-type]  # no space after the colon\n", False),
        ('x = "# type: ignore"  # a string is not a comment\n', True),
    ],
)
def test_the_rule(line: str, ok: bool) -> None:
    assert (bad_ignores(line) == []) is ok


def test_every_ignore_has_a_code_and_a_reason() -> None:
    assert len(PACKAGES) == 4
    files = [p for pkg in PACKAGES for p in sorted((ROOT / pkg).rglob("*.py*")) if p.suffix in _SOURCE]
    assert len(files) > 100  # the packages were found
    bad = [
        f"{path.relative_to(ROOT)}:{line}: {comment}"
        for path in files
        for line, comment in bad_ignores(path.read_text(encoding="utf-8"))
    ]
    assert not bad, "type: ignore needs [code] and a '# reason' after it:\n" + "\n".join(bad)
