"""Canonical JSON (RFC 8785) and domain-separated digests.

What the gate checks is what runs: arguments are frozen to their canonical
bytes once, the decision and the audit digest are computed from those bytes,
and the tool receives a fresh value decoded from the same bytes.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from typing import Any

import orjson
import rfc8785

from warded.errors import ArgumentError

_SAFE_INT = 2**53 - 1
_LONG_DIGITS = re.compile(rb"[0-9]{19}")  # every integer of 18 digits or fewer fits in 64 bits


def _plain(value: Any) -> bool:
    """Whether orjson (sorted keys; compact, UTF-8) already gives RFC 8785's bytes.

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


def _unsafe_integral(value: Any) -> bool:
    """Whether `value` holds an integral float beyond the JSON-safe range but below 1e21.

    RFC 8785 writes such a float as plain digits (1e20 as 100000000000000000000),
    which reads back as an integer outside the safe range: the bytes would not
    round-trip, and nothing could be sealed from them.
    """
    stack = [value]
    while stack:
        v = stack.pop()
        if type(v) is float:
            if v.is_integer() and _SAFE_INT < abs(v) < 1e21:
                return True
        elif isinstance(v, dict):
            stack.extend(v.values())
        elif isinstance(v, list | tuple):
            stack.extend(v)
    return False


def canonical_json(value: Any) -> bytes:
    """Return the RFC 8785 encoding of `value`; raise ArgumentError if it has none.

    The bytes always read back (`thaw`) into a value with the same encoding.
    """
    if _plain(value):
        try:
            return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
        except orjson.JSONEncodeError:
            pass  # lone surrogates, or too deep: let rfc8785 decide
    try:
        if _unsafe_integral(value):
            raise ArgumentError("integral number outside the JSON-safe range (|n| < 2**53)")
        return bytes(rfc8785.dumps(value))
    except rfc8785.IntegerDomainError:
        raise ArgumentError("integer outside the JSON-safe range (|n| < 2**53)") from None
    except rfc8785.FloatDomainError:
        raise ArgumentError("number is NaN or infinite") from None
    except (rfc8785.CanonicalizationError, TypeError, ValueError, RecursionError) as exc:
        raise ArgumentError(f"not representable as canonical JSON ({type(exc).__name__})") from None


def thaw(frozen: bytes) -> Any:
    """Decode canonical bytes into a new, independent Python value.

    orjson reads canonical JSON into the same value as `json.loads`; bytes with
    a run of 19 digits or more (perhaps an integer beyond 64 bits, which orjson
    would read as a float) and what orjson refuses (a lone surrogate escape,
    nesting deeper than it goes) are read by `json.loads`, as before.
    """
    if _LONG_DIGITS.search(frozen) is not None:
        return json.loads(frozen)  # orjson would read an integer beyond 64 bits as a float
    try:
        return orjson.loads(frozen)
    except orjson.JSONDecodeError:
        return json.loads(frozen)


def digest(domain: str, data: bytes) -> str:
    """SHA-256 over a domain tag and `data`, hex encoded."""
    h = hashlib.sha256()
    h.update(domain.encode())
    h.update(b"\x00")
    h.update(data)
    return h.hexdigest()


ARGS_DOMAIN = "warded.args.v2"


def args_digest(frozen: bytes, key: bytes) -> str:
    """The keyed digest (HMAC-SHA-256 under the deployment key) of frozen call
    arguments, as the audit log and approvals record it: it identifies the
    arguments without letting anyone without the key test guesses of them."""
    mac = hmac.new(key, ARGS_DOMAIN.encode() + b"\x00", hashlib.sha256)
    mac.update(frozen)
    return mac.hexdigest()
