"""Metadata templates: which typed values each class of identifier carries (data, not code).

Each class has a JSON file in `templates/` with a `version` (sent to a second-level node as
`templateVersion`) and its values: `key` (what the caller passes), `type` (the Handle value type),
`index` (stable; 1 is URL, 100 HS_ADMIN), optional `required` and `scope` (the API token scope needed
to read it; absent: public).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any, Final

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from plantwire_platform.identifiers.handle import ADMIN_INDEX, HandleValue, Scope

TEMPLATE_DIR: Final = Path(__file__).parent / "templates"
URL_INDEX: Final = 1


class TemplateError(ValueError):
    """A template file that does not parse, or values that do not fit a template."""


class TemplateValue(BaseModel):
    model_config = ConfigDict(extra="forbid")

    key: str
    type: str
    index: int = Field(gt=URL_INDEX, lt=ADMIN_INDEX)
    required: bool = False
    scope: Scope | None = None


class Template(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    class_: str = Field(alias="class")
    version: str
    description: str = ""
    values: list[TemplateValue]

    def build(self, given: Mapping[str, Any], ttl: int, timestamp: float) -> list[HandleValue]:
        """Typed values from `given`; unknown keys and missing required keys raise TemplateError."""
        known = {v.key for v in self.values}
        unknown = sorted(set(given) - known)
        if unknown:
            raise TemplateError(f"template {self.class_!r} {self.version} has no value {', '.join(unknown)}")
        out = []
        for v in self.values:
            data = given.get(v.key)
            if data is None or data == "":
                if v.required:
                    raise TemplateError(f"template {self.class_!r} needs a value for {v.key!r}")
                continue
            out.append(HandleValue(v.index, v.type, _text(data), "string", ttl, timestamp, v.scope))
        return out


def _text(data: Any) -> str:
    if isinstance(data, bool):
        return "true" if data else "false"
    if isinstance(data, float):
        return repr(round(data, 6))
    return str(data)


@cache
def load_template(class_: str, directory: Path = TEMPLATE_DIR) -> Template:
    path = directory / f"{class_}.json"
    try:
        template = Template.model_validate(json.loads(path.read_text(encoding="utf-8")))
    except FileNotFoundError as err:
        raise TemplateError(f"no template for class {class_!r} ({path.name})") from err
    except (ValueError, ValidationError) as err:
        raise TemplateError(f"template {path.name} is not valid: {err}") from err
    indices = [v.index for v in template.values]
    if len(set(indices)) != len(indices) or template.class_ != class_:
        raise TemplateError(f"template {path.name}: duplicate indices or a class other than {class_!r}")
    return template
