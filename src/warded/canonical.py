"""Canonical JSON (RFC 8785) and domain-separated digests.

What the gate checks is what runs: arguments are frozen to their canonical
bytes once, the decision and the audit digest are computed from those bytes,
and the tool receives a fresh value decoded from the same bytes.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import rfc8785

from warded.errors import ArgumentError


def canonical_json(value: Any) -> bytes:
    """Return the RFC 8785 encoding of `value`; raise ArgumentError if it has none."""
    try:
        return bytes(rfc8785.dumps(value))
    except rfc8785.IntegerDomainError:
        raise ArgumentError("integer outside the JSON-safe range (|n| < 2**53)") from None
    except rfc8785.FloatDomainError:
        raise ArgumentError("number is NaN or infinite") from None
    except (rfc8785.CanonicalizationError, TypeError, ValueError, RecursionError) as exc:
        raise ArgumentError(f"not representable as canonical JSON ({type(exc).__name__})") from None


def thaw(frozen: bytes) -> Any:
    """Decode canonical bytes into a new, independent Python value."""
    return json.loads(frozen)


def digest(domain: str, data: bytes) -> str:
    """SHA-256 over a domain tag and `data`, hex encoded."""
    h = hashlib.sha256()
    h.update(domain.encode())
    h.update(b"\x00")
    h.update(data)
    return h.hexdigest()


ARGS_DOMAIN = "warded.args.v1"


def args_digest(frozen: bytes) -> str:
    """The digest of frozen call arguments, as recorded in the audit log."""
    return digest(ARGS_DOMAIN, frozen)
