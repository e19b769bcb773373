"""Fixtures shared by the obligation tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from warded import MemoryStore, SQLiteStore, Store


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "memory":
        yield MemoryStore()
        return
    s = SQLiteStore(tmp_path / "store.db")
    yield s
    s.close()
