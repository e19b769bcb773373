"""The AgentDojo policies mention no value of the suites' environments either.

A policy that lists the environment's payees, contacts or sites as "known"
trusts whatever put them there — and incoming transactions, mail, invitations
and web pages are written by others. The policies in examples/agentdojo/
must judge a target by where its value came from in the session
(`context.provenance`), not by a list copied from the data. So no file there
may contain an identifier-like value of any suite's environment (both
versions): an IBAN, an e-mail address, a URL or host, a number of five or
more digits, a proper name (a value that starts with a capital letter) —
matched as a whole word.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest

POLICIES = Path(__file__).resolve().parents[2] / "examples" / "agentdojo"
VERSIONS = ("v1.1.2", "v1.2.2")
SUITES = ("banking", "slack", "travel", "workspace")

IBAN = re.compile(r"\b[A-Z]{2}\d{2}[A-Z0-9]{10,30}\b")
EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
HOST = re.compile(r"\b(?:[\w-]+\.)+(?:com|net|org|io|ch|de|uk|info|ly)\b")
NUMBER = re.compile(r"\d{5,}")


def leaves(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield str(k)
            yield from leaves(v)
    elif isinstance(value, list | tuple):
        for v in value:
            yield from leaves(v)


def identifiers(text: str) -> set[str]:
    """The identifier-like values inside one string of the environment."""
    found: set[str] = set()
    for pattern in (IBAN, EMAIL, HOST, NUMBER):
        found |= set(pattern.findall(text))
    short = text.strip()
    if 3 <= len(short) <= 40 and short[0].isupper() and "\n" not in short:
        found.add(short)  # a name: a person, a channel, a hotel, a city
    return found


@cache
def environment_values(version: str, suite: str) -> frozenset[str]:
    from agentdojo.task_suite.load_suites import get_suite

    s = get_suite(version, suite)
    env = s.load_and_inject_default_environment({})
    values: set[str] = set()
    for text in leaves(env.model_dump(mode="json")):
        values |= identifiers(text)
    return frozenset(values)


def mentions(text: str, values: frozenset[str]) -> list[str]:
    return sorted(
        v for v in values if re.search(rf"(?<![\w.@-]){re.escape(v)}(?![\w@-])", text) is not None
    )


@pytest.mark.parametrize("suite", SUITES)
def test_no_policy_file_mentions_a_value_of_any_environment(agentdojo: Any, suite: str) -> None:
    values: frozenset[str] = frozenset()
    for version in VERSIONS:
        for name in SUITES:
            values |= environment_values(version, name)
    files = sorted(p for p in (POLICIES / suite).rglob("*") if p.is_file())
    assert files
    for path in files:
        assert mentions(path.read_text(encoding="utf-8"), values) == [], path


def test_the_check_finds_payees_addresses_sites_and_names(agentdojo: Any) -> None:
    banking = environment_values("v1.2.2", "banking")
    slack = environment_values("v1.2.2", "slack")
    workspace = environment_values("v1.2.2", "workspace")
    travel = environment_values("v1.2.2", "travel")
    assert "GB29NWBK60161331926819" in banking
    assert "www.informations.com" in slack
    assert "Alice" in slack
    assert "emma.johnson@bluesparrowtech.com" in workspace
    assert "Le Marais Boutique" in travel
    old = (POLICIES.parent / "agentdojo-labels" / "banking" / "entities.json").read_text("utf-8")
    assert "GB29NWBK60161331926819" in mentions(old, banking)  # the baseline's payee list
    assert mentions('{"members": ["Alice", "Bob"]}', slack) == ["Alice", "Bob"]
    assert mentions("an Alice-like name; alice", slack) == []
    assert mentions("pay GB29NWBK60161331926819 now", banking) == ["GB29NWBK60161331926819"]
