"""docs/identifiers.md lists every identifier setting and every template value, so it cannot drift."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel

from plantwire_platform.identifiers.settings import IdentifierSettings
from plantwire_platform.identifiers.templates import TEMPLATE_DIR, load_template

DOC = (Path(__file__).resolve().parents[2] / "docs" / "identifiers.md").read_text(encoding="utf-8")


def env_names(model: type[BaseModel], prefix: str) -> list[str]:
    names = []
    for name, field in model.model_fields.items():
        sub = field.annotation
        if isinstance(sub, type) and issubclass(sub, BaseModel):
            names += env_names(sub, f"{prefix}{name.upper()}__")
        else:
            names.append(f"{prefix}{name.upper()}")
    return names


def test_every_setting_is_documented() -> None:
    names = env_names(IdentifierSettings, "PLANTWIRE_IDENTIFIERS__")
    assert len(names) >= 15
    assert [n for n in names if f"`{n}`" not in DOC] == []


def test_every_template_value_is_documented_with_its_index() -> None:
    for path in TEMPLATE_DIR.glob("*.json"):
        t = load_template(path.stem)
        row = next(line for line in DOC.splitlines() if line.startswith(f"| {t.class_} | {t.version} |"))
        for v in t.values:
            assert f"{v.key} {v.index}" in row, (t.class_, v.key)
