"""The ASGI entry point for process managers: `uvicorn --factory warded.server.asgi:app`.

The configuration file comes from the `WARDED_CONFIG` environment variable.
"""

from __future__ import annotations

import os

from fastapi import FastAPI

from warded.server.app import create_app
from warded.server.config import ConfigError, load_config

CONFIG_ENV = "WARDED_CONFIG"


def app() -> FastAPI:
    path = os.environ.get(CONFIG_ENV)
    if not path:
        raise ConfigError(f"set {CONFIG_ENV} to the service's configuration file")
    return create_app(load_config(path))
