"""The deployment key: it keys every digest that covers argument values.

The audit log keeps a redacted copy of each call's arguments beside a digest
of the full arguments, and approvals are bound to a digest of the call. An
unkeyed digest of a low-entropy value (a 4-digit PIN) gives the value back to
anyone who tries every candidate; an HMAC under a secret kept outside the
audit database does not. `verify` never needs the key: the chain's own
hashes are unkeyed.

Where the key comes from, first match wins:

1. the `key` given to the gate (bytes, or the path of a key file);
2. the environment: `WARDED_KEY` (hex, at least 32 hex digits) or
   `WARDED_KEY_FILE` (a path);
3. the store's key file (the SQLite store's is `<database>.key`), created
   with mode 0600 on first use;
4. a random key held in memory, for stores that keep nothing on disk.

Several processes or nodes that share one store must share one key (the
SQLite key file does this by itself; for a database server, set
`WARDED_KEY_FILE` or `WARDED_KEY` on every node). A store shared by nodes
(`shared = True`, the PostgreSQL store) has no key file and never gets a
random key: without one of the first two, the gate refuses to start.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path

from warded.errors import WardedError

ENV_KEY = "WARDED_KEY"
ENV_KEY_FILE = "WARDED_KEY_FILE"
KEY_BYTES = 32
MIN_KEY_BYTES = 16


def deployment_key(
    given: bytes | str | Path | None, default_file: Path | None, *, shared: bool = False
) -> bytes:
    """The key to use; raises WardedError for a key that is too short or unreadable,
    or missing for a `shared` store."""
    if isinstance(given, bytes):
        return _checked(given, "the key given to the gate")
    if given is not None:
        return read_key_file(Path(given))
    if os.environ.get(ENV_KEY):
        try:
            key = bytes.fromhex(os.environ[ENV_KEY].strip())
        except ValueError:
            raise WardedError(f"{ENV_KEY} must be hex digits") from None
        return _checked(key, ENV_KEY)
    if os.environ.get(ENV_KEY_FILE):
        return read_key_file(Path(os.environ[ENV_KEY_FILE]))
    if default_file is not None:
        return read_key_file(default_file, create=True)
    if shared:
        raise WardedError(
            f"a store shared by several nodes needs the deployment's key: set {ENV_KEY} or "
            f"{ENV_KEY_FILE} to the same key on every node"
        )
    return secrets.token_bytes(KEY_BYTES)


def read_key_file(path: Path, *, create: bool = False) -> bytes:
    """The key in `path` (hex text); with `create`, a new random key is written first
    if there is none (mode 0600; safe when several processes race to create it)."""
    if create and not path.exists():
        _create(path)
    try:
        text = path.read_text(encoding="ascii").strip()
        key = bytes.fromhex(text)
    except (OSError, ValueError) as exc:
        raise WardedError(f"cannot read the key file {path}: {exc}") from None
    return _checked(key, f"the key file {path}")


def _create(path: Path) -> None:
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as f:
            f.write(secrets.token_hex(KEY_BYTES) + "\n")
            f.flush()
            os.fsync(f.fileno())
        with contextlib.suppress(FileExistsError):  # another process was first: use its key
            os.link(tmp, path)
    finally:
        with contextlib.suppress(OSError):
            os.unlink(tmp)


def _checked(key: bytes, what: str) -> bytes:
    if len(key) < MIN_KEY_BYTES:
        raise WardedError(f"{what} is {len(key)} bytes; at least {MIN_KEY_BYTES} are needed")
    return key
