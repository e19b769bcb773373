"""Every adapter example runs offline, as a user would run it, and shows what it says."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "adapters"
SCRIPTS = [
    "openai_chat.py",
    "openai_responses.py",
    "anthropic_messages.py",
    "langchain_agent.py",
    "agents_sdk.py",
]
KNOWN = "GB33BUKB20201555555555"


@pytest.mark.parametrize("script", SCRIPTS)
def test_the_example_runs_offline_and_shows_each_step(script: str, tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-W", "error", str(EXAMPLES / script)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    # an allowed call
    assert f"ran      send_money(recipient='{KNOWN}', amount=42.5, subject='paper')" in out
    # refusals the model sees, in the refusal's own text
    laptop = f"send_money(recipient='{KNOWN}', amount=1200, subject='laptop')"
    assert f"REFUSED  {laptop} -> approval_required, policy payments.large-known" in out
    assert (
        "REFUSED  send_money(recipient='XX00ATTACKER0000000000', amount=10, subject='tip')" in out
    )
    assert '"message":"This call is not permitted by policy."' in out
    # a person approves; the model's retry runs, once
    approved_at = out.index("alice (finance) approves send_money 1200")
    assert out.count(f"ran      {laptop}") == 1
    assert out.index(f"ran      {laptop}") > approved_at
    # untrusted content takes payments away: not offered any more, and refused if called
    read_at = out.index("ran      read_document(path='inbox/invoice-118.txt')")
    offered = re.findall(r"^\[model request (\d)\] tools offered: (.*)$", out, re.M)
    assert offered == [(str(n), "get_balance, read_document, send_money") for n in range(1, 6)] + [
        ("6", "get_balance, read_document"),
        ("7", "get_balance, read_document"),
    ]
    refund = f"send_money(recipient='{KNOWN}', amount=95, subject='refund')"
    answered = "NOT OFFERED" if script == "agents_sdk.py" else "REFUSED"  # the SDK's own answer
    assert out.index(f"{answered}  {refund}") > read_at
    # what happened, and the audit trail
    payments = re.findall(r"^ +([\d.]+) to (\S+) \((\w+)\)$", out, re.M)
    assert payments == [("42.50", KNOWN, "paper"), ("1200.00", KNOWN, "laptop")]
    assert "the hash chain verifies: True" in out


def test_the_docs_quote_the_examples_as_they_are() -> None:
    """Every line of a docs/adapters.md excerpt is a line of the example it names."""
    docs = (EXAMPLES.parents[1] / "docs" / "adapters.md").read_text()
    blocks = re.findall(r"```python\n# from examples/adapters/(\S+)\n(.*?)```", docs, re.S)
    assert sorted({name for name, _ in blocks}) == sorted(SCRIPTS)
    for name, block in blocks:
        lines = {line.strip() for line in (EXAMPLES / name).read_text().splitlines()}
        quoted = [line.strip() for line in block.splitlines() if line.strip()]
        assert [line for line in quoted if line not in lines] == [], name
