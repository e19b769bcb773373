"""docs/api.md describes every endpoint of the app, and only endpoints the app has.

The API's endpoints come from the OpenAPI document the app publishes, the
pages' from their router (they are left out of the OpenAPI document); the
documented ones are every "`METHOD /path`" in docs/api.md.
"""

from __future__ import annotations

import re
from pathlib import Path

from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from server_helpers import ROOT
from warded.server import pages

API_DOC = ROOT / "docs" / "api.md"
ENDPOINT = re.compile(r"`(GET|POST|PUT|PATCH|DELETE) (/[^`?\s]*)")
METHODS = ("get", "post", "put", "patch", "delete")


def shape(path: str) -> str:
    """A path with its parameters unnamed: `/v1/approvals/{id}` ~ `/v1/approvals/{approval_id}`."""
    return re.sub(r"\{[^}]*\}", "{}", path)


def documented(text: str) -> set[tuple[str, str]]:
    return {(method, shape(path)) for method, path in ENDPOINT.findall(text)}


def served(client: TestClient) -> set[tuple[str, str]]:
    found = {
        (method.upper(), shape(path))
        for path, operations in client.get("/openapi.json").json()["paths"].items()
        for method in operations
        if method in METHODS
    }
    for route in pages.router.routes:
        assert isinstance(route, APIRoute)
        found |= {(m, shape(route.path)) for m in route.methods if m != "HEAD"}
    found.add(("GET", "/openapi.json"))
    found.add(("GET", "/static/{}"))  # the pages' stylesheet and script
    return found


def test_every_endpoint_is_documented_and_every_documented_endpoint_exists(
    client: TestClient,
) -> None:
    doc = documented(API_DOC.read_text(encoding="utf-8"))
    app = served(client)
    assert sorted(app - doc) == [], "endpoints missing from docs/api.md"
    assert sorted(doc - app) == [], "docs/api.md names endpoints the app does not have"


def test_the_comparison_sees_a_missing_and_a_stale_endpoint(client: TestClient) -> None:
    text = API_DOC.read_text(encoding="utf-8")
    assert ("POST", "/v1/decide") in documented(text)
    without = documented(text.replace("`POST /v1/decide`", "`POST /v1/decided`"))
    assert ("POST", "/v1/decide") in served(client) - without
    assert ("POST", "/v1/decided") in without - served(client)


def test_the_static_files_the_doc_names_exist() -> None:
    static = Path(pages.__file__).parent / "static"
    assert {p.name for p in static.iterdir()} >= {"app.css", "live.js"}
