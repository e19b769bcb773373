"""What the wheel ships: the package marks itself typed (PEP 561), so type checkers
use warded's annotations (issue 8, item 18)."""

from __future__ import annotations

import zipfile
from pathlib import Path

from hatchling.builders.wheel import WheelBuilder

ROOT = Path(__file__).resolve().parent.parent


def test_the_wheel_ships_py_typed_beside_the_package(tmp_path: Path) -> None:
    wheel = next(WheelBuilder(str(ROOT)).build(directory=str(tmp_path), versions=["standard"]))

    names = zipfile.ZipFile(wheel).namelist()

    assert "warded/py.typed" in names
    assert "warded/gate.py" in names
    assert not [n for n in names if n.startswith(("tests/", "src/"))]
