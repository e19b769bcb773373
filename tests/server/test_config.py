"""A setting that cannot mean what it says stops the service at start, naming the key
(G8: an approval lifetime of inf or nan would make approvals that never expire; G15: a
sign-in limit of 0 or an endless window would lock every person out)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from server_helpers import Tokens, write_config
from warded.server import load_config
from warded.server.config import ConfigError

NONSENSE = [
    ("login_failures", 0),  # every sign-in refused
    ("login_failures", -1),
    ("login_account_failures", 0),
    ("login_address_failures", 0),
    ("login_window_seconds", 0),
    ("login_window_seconds", -300),
    ("login_window_seconds", float("inf")),  # a lockout for good
    ("login_window_seconds", float("nan")),
    ("approval_ttl", 0),
    ("approval_ttl", float("inf")),  # approvals that never expire
    ("approval_ttl", float("nan")),
    ("live_poll_seconds", 0),  # a worker polling the store without pause
    ("live_poll_seconds", float("nan")),
    ("max_body_bytes", 0),
    ("max_body_bytes", -1),
    ("trusted_proxies", ["*"]),  # would believe anyone's X-Forwarded-For
    ("trusted_proxies", ["proxy.internal"]),
    ("trusted_proxies", [8]),
    ("trusted_proxies", ["10.0.0.0/33"]),
]


@pytest.mark.parametrize(("key", "value"), NONSENSE)
def test_a_setting_out_of_range_is_an_error_naming_it(
    tmp_path: Path, accounts_file: tuple[Path, Tokens], key: str, value: Any
) -> None:
    config = write_config(tmp_path, accounts_file[0], **{key: value})
    assert yaml.safe_load(config.read_text())[key] == value or value != value  # nan
    with pytest.raises(ConfigError) as caught:
        load_config(config)
    assert key in str(caught.value)


def test_the_limits_a_config_sets_are_the_services(
    tmp_path: Path, accounts_file: tuple[Path, Tokens]
) -> None:
    config = write_config(
        tmp_path,
        accounts_file[0],
        login_failures=3,
        login_account_failures=30,
        login_address_failures=300,
        login_window_seconds=60.5,
        trusted_proxies=["10.0.0.2", "fd00::/8"],
    )
    loaded = load_config(config)
    assert (loaded.login.pair, loaded.login.account, loaded.login.address) == (3, 30, 300)
    assert loaded.login.window == 60.5
    assert loaded.trusted_proxies == ("10.0.0.2", "fd00::/8")
