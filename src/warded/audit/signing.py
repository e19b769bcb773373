"""Signed checkpoints: a third party can check an exported checkpoint with a public key.

The chain is unkeyed: anyone who can write the database can append records
after a checkpoint's head that `verify` accepts, and someone who rewrites the
whole log from the start can forge a consistent chain. A checkpoint exported
and kept elsewhere catches truncation and rewriting up to its head; signing it
(Ed25519, pyca/cryptography) lets whoever holds the public key know that the
checkpoint itself came from the operator and was not edited.
"""

from __future__ import annotations

import base64
import os
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from warded.audit.record import Checkpoint
from warded.canonical import canonical_json

SIGN_DOMAIN = "warded.checkpoint.v1"


def generate_key(path: Path) -> Path:
    """Write a new Ed25519 private key to `path` (PEM, mode 0600) and its public key
    beside it (`<path>.pub`); return the public key's path. Never overwrites."""
    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(private)
    pub = path.with_name(path.name + ".pub")
    with pub.open("xb") as f:
        f.write(public)
    return pub


def sign(checkpoint: Checkpoint, private_key: Path) -> dict[str, Any]:
    """The checkpoint's JSON with an Ed25519 signature over its canonical bytes."""
    key = serialization.load_pem_private_key(private_key.read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError(f"{private_key} is not an Ed25519 private key")
    signature = key.sign(_message(checkpoint))
    return {**checkpoint.to_json(), "signature": base64.b64encode(signature).decode()}


def verify_signed(data: dict[str, Any], public_key: Path) -> Checkpoint:
    """The checkpoint in `data` if its signature verifies under `public_key`; else ValueError."""
    checkpoint = Checkpoint.from_json(data)
    key = serialization.load_pem_public_key(public_key.read_bytes())
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError(f"{public_key} is not an Ed25519 public key")
    signature = data.get("signature")
    if not isinstance(signature, str):
        raise ValueError("the checkpoint is not signed")
    try:
        key.verify(base64.b64decode(signature, validate=True), _message(checkpoint))
    except (InvalidSignature, ValueError):
        raise ValueError("the checkpoint's signature does not verify") from None
    return checkpoint


def _message(checkpoint: Checkpoint) -> bytes:
    return canonical_json({"domain": SIGN_DOMAIN, **checkpoint.to_json()})
