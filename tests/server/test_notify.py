"""Webhook notices of pending approvals: signed, sent once across workers."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from server_helpers import KNOWN, Served, Tokens, bearer, write_config
from warded import ManualClock
from warded.server import create_app, load_config
from warded.server.notify import sign, verify_signature

KEY = b"webhook-secret-for-tests-0123456789"


class Receiver:
    def __init__(self) -> None:
        self.got: list[tuple[dict[str, str], bytes]] = []
        self.arrived = threading.Event()

        async def hook(request: Request) -> Response:
            self.got.append((dict(request.headers), await request.body()))
            self.arrived.set()
            return Response(status_code=204)

        self.app = Starlette(routes=[Route("/hook", hook, methods=["POST"])])


def test_a_signature_verifies_only_for_the_exact_body_key_and_a_fresh_time() -> None:
    body = b'{"event":"approval.pending"}'
    signature = sign(KEY, 1000, body)
    assert verify_signature(KEY, body, "1000", signature, now=1100)
    assert not verify_signature(KEY, body + b" ", "1000", signature, now=1100)
    assert not verify_signature(b"other-key", body, "1000", signature, now=1100)
    assert not verify_signature(KEY, body, "1001", signature, now=1100)
    assert not verify_signature(KEY, body, "1000", signature, now=1000 + 301)
    assert not verify_signature(KEY, body, "soon", signature, now=1100)


def test_a_pending_approval_is_announced_once_signed_with_its_context(
    tmp_path: Path, accounts_file: tuple[Path, Tokens], tokens: Tokens
) -> None:
    receiver = Receiver()
    (tmp_path / "webhook.key").write_bytes(KEY)
    with Served(receiver.app) as hook_base:
        config = write_config(
            tmp_path,
            accounts_file[0],
            notify={"webhook": f"{hook_base}/hook", "secret_file": "webhook.key"},
        )
        clock = ManualClock()
        first = create_app(load_config(config), clock=clock)
        second = create_app(load_config(config), clock=clock)  # another worker, same store
        with TestClient(first) as one, TestClient(second) as two:
            body = {
                "tool": "send_money",
                "args": {"recipient": KNOWN, "amount": 2000, "subject": "server"},
                "session": "notify-run",
            }
            held = one.post("/v1/calls", json=body, headers=bearer(tokens.billing)).json()
            approval = held["refusal"]["approval_id"]
            assert receiver.arrived.wait(30), "no notice within 30 s"
            for client, app in ((one, first), (two, second)):
                live = app.state.service.live
                client.portal.call(live.check)  # type: ignore[union-attr]
                client.portal.call(live.settle)  # type: ignore[union-attr]
    assert len(receiver.got) == 1
    headers, raw = receiver.got[0]
    assert headers["x-warded-event"] == "approval.pending"
    assert verify_signature(
        KEY, raw, headers["x-warded-timestamp"], headers["x-warded-signature"], now=clock.now()
    )
    notice: dict[str, Any] = json.loads(raw)
    assert notice["approval"]["id"] == approval
    assert notice["approval"]["args"]["amount"] == 2000
    assert notice["approval"]["policy"] == "payments.large-known"
