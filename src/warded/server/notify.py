"""Webhook notices for pending approvals, signed with HMAC-SHA-256.

Each notice is a POST of a JSON body with three headers:

    X-Warded-Event:      approval.pending
    X-Warded-Timestamp:  seconds since the epoch, when it was signed
    X-Warded-Signature:  sha256=<hex HMAC-SHA-256 of "<timestamp>." + body, keyed by the secret>

A receiver recomputes the HMAC over the exact bytes it received, compares in
constant time, and rejects timestamps older than a few minutes (replays);
`verify_signature` does exactly that. Delivery is tried a few times with
backoff; a notice that cannot be delivered is logged, and the approval still
waits on the page.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
from typing import Any

import httpx

from warded.clock import Clock

log = logging.getLogger("warded.server")
EVENT = "approval.pending"


def sign(key: bytes, timestamp: int, body: bytes) -> str:
    mac = hmac.new(key, f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"sha256={mac.hexdigest()}"


def verify_signature(
    key: bytes, body: bytes, timestamp: str, signature: str, now: float, tolerance: float = 300.0
) -> bool:
    """Whether a notice is authentic and fresh (for receivers, and the tests)."""
    try:
        when = int(timestamp)
    except ValueError:
        return False
    if abs(now - when) > tolerance:
        return False
    return hmac.compare_digest(sign(key, when, body), signature)


class Notifier:
    """Posts signed notices to one webhook URL."""

    def __init__(
        self, url: str, key: bytes, clock: Clock, attempts: int = 4, backoff: float = 1.0
    ) -> None:
        self.url = url
        self.key = key
        self.clock = clock
        self.attempts = attempts
        self.backoff = backoff

    async def send(self, payload: dict[str, Any]) -> bool:
        body = json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()
        async with httpx.AsyncClient(timeout=10.0) as client:
            for attempt in range(self.attempts):
                timestamp = int(self.clock.now())
                headers = {
                    "content-type": "application/json",
                    "x-warded-event": EVENT,
                    "x-warded-timestamp": str(timestamp),
                    "x-warded-signature": sign(self.key, timestamp, body),
                }
                try:
                    answer = await client.post(self.url, content=body, headers=headers)
                    if answer.is_success:
                        return True
                    problem = f"HTTP {answer.status_code}"
                except httpx.HTTPError as exc:
                    problem = type(exc).__name__
                log.warning("webhook %s attempt %d failed: %s", self.url, attempt + 1, problem)
                if attempt + 1 < self.attempts:
                    await asyncio.sleep(self.backoff * 2**attempt)
        log.error("webhook %s: notice for %s not delivered", self.url, payload.get("approval"))
        return False
