"""Cedar's integration corpus through the compiled path, and again with a catch-all permit (G19).

The corpus (`shared/data/cedar-integration-tests`, Apache-2.0, see its
ORIGIN.md) holds about 7,800 generated tests from Cedar's differential
fuzzing and the hand-written tests, each a schema, an entity store, policies
and requests with Cedar's expected answers. Every request goes through the
compiled path (slice compiled for its principal and action, no self-check,
so what is tested is the compiled code itself); wherever it answers, the
answer must be cedarpy's. Each test is then rerun with
`permit(principal, action, resource);` appended: most corpus requests never
reach a forbid or an erroring policy otherwise.

The corpus is found beside the repository (`../shared/...`, walking up) or
at `$WARDED_CEDAR_CORPUS`; without it the test is skipped, except under CI,
where it fails.
"""

from __future__ import annotations

import io
import json
import os
import tarfile
import zlib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import cedarpy
import pytest

from warded.policy.compiled import CompiledPath
from warded.policy.compiler import CompiledSlice, Unsupported, compile_slice
from warded.policy.selfcheck import agrees

CORPUS = Path("shared") / "data" / "cedar-integration-tests"
SHARDS = 8
CATCH_ALL = "\npermit(principal, action, resource);"


def corpus_root() -> Path | None:
    configured = os.environ.get("WARDED_CEDAR_CORPUS")
    if configured:
        return Path(configured)
    for folder in Path(__file__).resolve().parents:
        if (folder / CORPUS / "ORIGIN.md").is_file():
            return folder / CORPUS
    return None


@dataclass(frozen=True)
class Case:
    name: str
    schema: str
    entities: str
    policies: str
    requests: list[dict[str, Any]]


@cache
def cases() -> list[Case]:
    root = corpus_root()
    if root is None:
        if os.environ.get("CI"):
            pytest.fail(f"Cedar's integration corpus is missing (looked for {CORPUS} and up)")
        pytest.skip("Cedar's integration corpus is not beside this checkout")
    files: dict[str, str] = {}
    with tarfile.open(root / "corpus-tests.tar.gz") as tar:
        for member in tar:
            if member.isfile():
                data = tar.extractfile(member)
                assert data is not None
                files[member.name] = io.TextIOWrapper(data, encoding="utf-8").read()
    for path in sorted(root.rglob("*")):  # the hand-written tests and their sample data
        if path.suffix in (".json", ".cedar", ".cedarschema"):
            files[str(path.relative_to(root))] = path.read_text(encoding="utf-8")
    out = []
    for name, text in sorted(files.items()):
        if not name.endswith(".json") or name.endswith("entities.json"):
            continue
        test = json.loads(text)
        if not isinstance(test, dict) or "requests" not in test:
            continue
        out.append(
            Case(
                name,
                files[test["schema"]],
                files[test["entities"]],
                files[test["policies"]],
                test["requests"],
            )
        )
    return out


def shard(k: int) -> Iterator[Case]:
    return (c for c in cases() if zlib.crc32(c.name.encode()) % SHARDS == k)


def run(case: Case, seen: Counter[str], wrong: list[str]) -> None:
    schema = cedarpy.Schema.from_str(case.schema)
    entities = cedarpy.Entities.from_json_str(case.entities, schema=schema)
    path = CompiledPath(schema, entities)
    assert path.schema is not None, (case.name, path.unsupported)
    requests = [
        {k: r[k] for k in ("principal", "action", "resource", "context")} for r in case.requests
    ]
    for extra in ("", CATCH_ALL):
        policies = cedarpy.PolicySet.from_str(case.policies + extra)
        cedar = cedarpy.is_authorized_batch(requests, policies, entities, schema)
        try:
            tree = policies.to_pst()
        except ValueError:  # syntax cedarpy's trees do not model: no bundle could hold it
            seen["requests no tree"] += len(requests)
            continue
        slices: dict[tuple[Any, ...], CompiledSlice | None] = {}
        for k, (request, result) in enumerate(zip(requests, cedar, strict=True)):
            d = result.diagnostics
            answer = (result.decision.value, tuple(sorted(d.reasons)), tuple(d.errors))
            if not extra:
                expected = case.requests[k]
                assert (answer[0].lower(), set(answer[1])) == (
                    expected["decision"],
                    set(expected["reason"]),
                ), case.name  # cedarpy itself agrees with the corpus
            p, a = request["principal"], request["action"]
            key = (p["type"], p["id"], a["type"], a["id"])
            if key not in slices:
                try:
                    slices[key] = compile_slice(
                        tree.static_policies, key[:2], key[2:], path.schema, path.store
                    )
                except Unsupported:
                    slices[key] = None
            compiled = slices[key]
            outcome = (
                None
                if compiled is None
                else compiled.decide(request["resource"], request["context"])
            )
            if outcome is None:
                seen["cedarpy"] += 1
                continue
            seen["compiled"] += 1
            if not agrees(outcome, answer):
                label = case.name + (" + catch-all" if extra else "")
                wrong.append(f"{label}: {request} -> {outcome}, cedarpy {answer}")


@pytest.mark.requirement("G19")
@pytest.mark.parametrize("k", range(SHARDS))
def test_the_compiled_path_decides_cedars_integration_corpus_as_cedarpy(k: int) -> None:
    seen: Counter[str] = Counter()
    wrong: list[str] = []
    for case in shard(k):
        run(case, seen, wrong)
    assert wrong == []
    # The compiled path must actually answer most of it (ip, datetime, duration and
    # tags are outside the subset and go to cedarpy).
    assert seen["compiled"] >= 0.75 * (seen["compiled"] + seen["cedarpy"]), seen


def test_the_corpus_is_all_there() -> None:
    assert len(cases()) >= 7_800


def test_a_missing_corpus_fails_under_ci_and_is_skipped_only_outside_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(f"{__name__}.corpus_root", lambda: None)
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="corpus is missing"):
        cases.__wrapped__()
    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception):
        cases.__wrapped__()
