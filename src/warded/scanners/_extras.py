"""Guarded imports of the `scan` extra's packages.

The core imports none of them; a scanner imports what it needs when it is
constructed, and a missing package raises an ImportError naming the extra.
"""

from __future__ import annotations

import importlib
from types import ModuleType

EXTRA = "scan"


def require(module: str, scanner: str) -> ModuleType:
    """The imported `module`, or ImportError saying to install `warded[scan]`."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ImportError(
            f"{scanner} needs the {module.split('.')[0]!r} package: "
            f"install the extra with `pip install 'warded[{EXTRA}]'`"
        ) from exc
