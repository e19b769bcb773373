"""Shared for the red-team harness tests: AgentDojo (the eval extra) and the suite runners."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]

REDTEAM = ROOT / "examples" / "redteam"


@pytest.fixture(scope="session")
def agentdojo() -> Any:
    """AgentDojo, or skip: these tests need `pip install '.[eval]'`."""
    return pytest.importorskip("agentdojo", reason="needs the eval extra (agentdojo)")


@pytest.fixture(scope="session")
def banking(agentdojo: Any) -> Any:
    from warded.evaluation.runner import SuiteRunner

    return SuiteRunner("v1.2.2", "banking")


@pytest.fixture(scope="session")
def slack(agentdojo: Any) -> Any:
    from warded.evaluation.runner import SuiteRunner

    return SuiteRunner("v1.2.2", "slack")
