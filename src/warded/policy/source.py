"""Where policy bundles come from: the `PolicySource` port and a directory source."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from warded.errors import BundleError, Problem

SCHEMA_NAMES = ("schema.cedarschema", "schema.cedarschema.json")
ENTITIES_NAME = "entities.json"


@dataclass(frozen=True, slots=True)
class BundleFiles:
    """The raw text of a bundle: policy files (name, text), a schema and entities."""

    policies: tuple[tuple[str, str], ...]
    schema: tuple[str, str]
    entities: tuple[str, str] | None = None


class PolicySource(Protocol):
    """Anything that can produce the current bundle files."""

    def read(self) -> BundleFiles: ...


class DirectorySource:
    """A directory holding `*.cedar`, `schema.cedarschema[.json]` and `entities.json`."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def read(self) -> BundleFiles:
        root = self.path
        if not root.is_dir():
            raise BundleError([Problem(str(root), None, "not a directory")])
        policies = tuple((p.name, _read(p)) for p in sorted(root.glob("*.cedar")) if p.is_file())
        if not policies:
            raise BundleError([Problem(str(root), None, "no *.cedar policy files")])
        schemas = [root / n for n in SCHEMA_NAMES if (root / n).is_file()]
        if len(schemas) != 1:
            what = "no schema" if not schemas else "two schemas"
            raise BundleError(
                [
                    Problem(
                        str(root),
                        None,
                        f"{what}: expected exactly one of {', '.join(SCHEMA_NAMES)}",
                    )
                ]
            )
        entities_path = root / ENTITIES_NAME
        entities = (ENTITIES_NAME, _read(entities_path)) if entities_path.is_file() else None
        return BundleFiles(policies, (schemas[0].name, _read(schemas[0])), entities)


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise BundleError([Problem(path.name, None, f"cannot read: {exc}")]) from None
