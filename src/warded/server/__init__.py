"""The HTTP service (`warded serve`): agent API, AuthZEN, approvals page, audit browser.

Needs the `server` extra: `pip install 'warded[server]'`.
"""

try:
    import argon2  # noqa: F401
    import fastapi  # noqa: F401
    import jinja2  # noqa: F401
    import sse_starlette  # noqa: F401
    import uvicorn  # noqa: F401
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        f"warded.server needs the 'server' extra ({exc.name} is missing): "
        "pip install 'warded[server]'"
    ) from exc

from warded.server.app import create_app
from warded.server.config import ConfigError, ServiceConfig, load_config

__all__ = ["ConfigError", "ServiceConfig", "create_app", "load_config"]
