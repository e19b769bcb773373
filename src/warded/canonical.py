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

_SAFE_INT = 2**53 - 1


def _plain(value: Any) -> bool:
    """Whether `json.dumps` (sorted, compact, UTF-8) already gives RFC 8785's bytes.

    It does for integers in the safe range; for floats whose shortest repr is
    plain positional notation with a fraction (ECMAScript and Python then
    print the same shortest round-trip digits; they differ on exponents and on
    integral floats such as 5.0); and for object keys in the Basic
    Multilingual Plane (RFC 8785 sorts keys by UTF-16 code units, Python by
    code points; the orders differ only around astral characters).
    """
    stack = [value]
    while stack:
        v = stack.pop()
        t = type(v)
        if t is str or t is bool or v is None:
            continue
        if t is int:
            if -_SAFE_INT <= v <= _SAFE_INT:
                continue
            return False
        if t is float:
            r = repr(v)
            if "e" in r or "n" in r or r.endswith(".0"):
                return False
            continue
        if t is dict:
            for k in v:
                if type(k) is not str or not (k.isascii() or max(k) < "\U00010000"):
                    return False
            stack.extend(v.values())
        elif t is list:
            stack.extend(v)
        else:
            return False
    return True


def canonical_json(value: Any) -> bytes:
    """Return the RFC 8785 encoding of `value`; raise ArgumentError if it has none."""
    if _plain(value):
        try:
            return json.dumps(
                value, sort_keys=True, separators=(",", ":"), ensure_ascii=False
            ).encode("utf-8")
        except (UnicodeEncodeError, RecursionError):
            pass  # lone surrogates, or too deep: let rfc8785 decide
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
