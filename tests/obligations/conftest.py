"""Fixtures shared by the obligation tests: the store, on every backend."""

from __future__ import annotations

from store_backends import store

__all__ = ["store"]
