"""The ASGI entry point for process managers: `uvicorn --factory warded.server.asgi:app`.

The configuration file comes from the `WARDED_CONFIG` environment variable;
`WARDED_SHADOW`, when set, names a shadow bundle that replaces the file's
`shadow` (what `warded serve run --shadow DIR` sets for its workers).
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from fastapi import FastAPI

from warded.server.app import create_app
from warded.server.config import ConfigError, load_config

CONFIG_ENV = "WARDED_CONFIG"
SHADOW_ENV = "WARDED_SHADOW"


def app() -> FastAPI:
    path = os.environ.get(CONFIG_ENV)
    if not path:
        raise ConfigError(f"set {CONFIG_ENV} to the service's configuration file")
    config = load_config(path)
    shadow = os.environ.get(SHADOW_ENV)
    if shadow:
        config = dataclasses.replace(config, shadow=Path(shadow).resolve())
    return create_app(config)
