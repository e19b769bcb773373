"""The `warded` command line: every command, its output and its exit code."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from warded import Gate, ManualClock, PolicyBundle, Principal, Session, SQLiteStore
from warded.audit.record import AUDIT_DOMAIN
from warded.canonical import canonical_json, digest
from warded.cli import cli, main

ROOT = Path(__file__).resolve().parent.parent
BUNDLES = ROOT / "tests" / "cases" / "bundles"
SCRIPT = Path(sys.executable).parent / "warded"
KNOWN = "GB33BUKB20201555555555"
PAYEE = f'Payee::"{KNOWN}"'
THURSDAY_10 = "1767261600"
FRIDAY_10 = "1767348000"
SEND_SCHEMA = {
    "type": "object",
    "properties": {
        "recipient": {"type": "string"},
        "amount": {"type": "number"},
        "subject": {"type": "string"},
    },
    "required": ["recipient", "amount", "subject"],
    "additionalProperties": False,
}


def run(*args: str) -> Result:
    """Invoke the CLI in-process; no outcome may be a traceback."""
    result = CliRunner().invoke(cli, list(args))
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result


def script(*args: str) -> subprocess.CompletedProcess[str]:
    """Run the installed console script in a real process."""
    assert SCRIPT.is_file(), f"console script not installed at {SCRIPT}"
    done = subprocess.run(
        [str(SCRIPT), *args], capture_output=True, text=True, timeout=60, check=False
    )
    assert "Traceback" not in done.stdout + done.stderr
    return done


def pay(amount: float, recipient: str = KNOWN) -> str:
    return json.dumps({"recipient": recipient, "amount": amount, "subject": "paper"})


def error_lines(result: Result) -> list[str]:
    lines = result.stderr.splitlines()
    assert lines
    assert all(line.startswith("error: ") for line in lines), lines
    return lines


# -- validate -------------------------------------------------------------------


def test_validate_accepts_the_banking_bundle_and_prints_its_version(banking_dir: Path) -> None:
    result = run("validate", str(banking_dir))
    assert result.exit_code == 0
    version = PolicyBundle.from_directory(banking_dir).version
    assert result.stdout == f"ok: 9 policies, 5 tools, version {version}\n"


def _replace(old: str, new: str) -> Callable[[str], str]:
    def edit(text: str) -> str:
        assert old in text
        return text.replace(old, new)

    return edit


BROKEN = [
    pytest.param(
        "payments.cedar",
        _replace("context.args.amount.lessThan(", "context.args.amuont.lessThan("),
        "payments.cedar:3",
        id="a typo'd attribute",
    ),
    pytest.param(
        "reads.cedar",
        _replace('Action::"read_document"', 'Action::"read_documents"'),
        "reads.cedar:13",
        id="an unknown action",
    ),
    pytest.param(
        "payments.cedar",
        lambda text: "\n".join(text.splitlines()[:24]),
        "payments.cedar:14",
        id="a truncated file",
    ),
    pytest.param(
        "reads.cedar",
        _replace('@id("reads.support")', '@id("reads.support")\n@rate("lots/minute")'),
        "reads.cedar:8",
        id="a bad @rate annotation",
    ),
]


@pytest.mark.requirement("G5")
@pytest.mark.parametrize(("file", "edit", "where"), BROKEN)
def test_validate_rejects_a_broken_bundle_naming_the_file_and_line(
    tmp_path: Path, banking_dir: Path, file: str, edit: Callable[[str], str], where: str
) -> None:
    broken = tmp_path / "policies"
    shutil.copytree(banking_dir, broken)
    (broken / file).write_text(edit((broken / file).read_text()))
    result = run("validate", str(broken))
    assert result.exit_code == 1
    assert result.stdout == ""
    assert any(line.startswith(f"error: {where}: ") for line in error_lines(result))


def test_validate_reports_a_directory_without_a_schema_as_one_error(tmp_path: Path) -> None:
    (tmp_path / "p.cedar").write_text("permit (principal, action, resource);")
    result = run("validate", str(tmp_path))
    assert result.exit_code == 1
    assert len(error_lines(result)) == 1


def test_validate_of_a_missing_directory_is_a_usage_error_exiting_1(tmp_path: Path) -> None:
    result = run("validate", str(tmp_path / "nope"))
    assert result.exit_code == 1


# -- check ----------------------------------------------------------------------


def test_check_allows_a_small_payment_and_names_the_permit(banking_dir: Path) -> None:
    result = run(
        "check", str(banking_dir), "-p", "billing-bot", "-t", "send_money",
        "--args", pay(42.5), "--resource", PAYEE,
    )  # fmt: skip
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[0] == "allow"
    assert lines[1].startswith("  policy payments.small-known: ")
    assert lines[-1] == f"bundle {PolicyBundle.from_directory(banking_dir).version}"


def test_check_refuses_a_large_payment_for_approval_and_exits_2(banking_dir: Path) -> None:
    result = run(
        "check", str(banking_dir), "--principal", 'Agent::"billing-bot"', "--tool", "send_money",
        "--args", pay(1200.0), "--resource", PAYEE,
    )  # fmt: skip
    assert result.exit_code == 2
    assert result.stdout.splitlines()[0] == "refused: approval_required"
    assert "policy payments.large-known: " in result.stdout
    assert "needs approval from finance" in result.stdout


def test_check_cites_the_forbid_that_denies_a_negative_payment(banking_dir: Path) -> None:
    result = run(
        "check", str(banking_dir), "-p", "billing-bot", "-t", "send_money",
        "--args", pay(-5.0), "--resource", PAYEE,
    )  # fmt: skip
    assert result.exit_code == 2
    assert result.stdout.splitlines()[:2] == [
        "refused: not_permitted",
        "  policy payments.positive: A payment amount must be positive.",
    ]


@pytest.mark.requirement("G4")
def test_check_denies_by_default_when_no_permit_matches(banking_dir: Path) -> None:
    result = run(
        "check", str(banking_dir), "-p", "billing-bot", "-t", "send_money",
        "--args", pay(5.0, "XX00"), "--resource", 'Payee::"XX00"',
    )  # fmt: skip
    assert result.exit_code == 2
    assert result.stdout.splitlines()[0] == "refused: not_permitted"
    assert "  policy " not in result.stdout


def test_check_applies_session_labels(banking_dir: Path) -> None:
    result = run(
        "check", str(banking_dir), "-p", "billing-bot", "-t", "send_money",
        "--args", pay(42.5), "--resource", PAYEE, "--label", "untrusted",
    )  # fmt: skip
    assert result.exit_code == 2
    assert "policy session.untrusted-no-payments: " in result.stdout


def test_check_treats_a_number_without_a_decimal_point_as_a_long(banking_dir: Path) -> None:
    result = run(
        "check", str(banking_dir), "-p", "billing-bot", "-t", "send_money",
        "--args", json.dumps({"recipient": KNOWN, "amount": 42, "subject": "x"}),
        "--resource", PAYEE,
    )  # fmt: skip
    assert result.exit_code == 2
    assert result.stdout.splitlines()[0] == "refused: not_permitted"
    assert "  engine error: " in result.stdout


@pytest.mark.requirement("G4")
@pytest.mark.parametrize(
    ("now", "code", "first"), [(THURSDAY_10, 0, "allow"), (FRIDAY_10, 2, "refused: not_permitted")]
)
def test_check_decides_at_the_time_given_by_now(now: str, code: int, first: str) -> None:
    result = run(
        "check", str(BUNDLES / "deploys"), "-p", "deployer", "-t", "deploy",
        "--args", '{"service": "web", "env": "staging"}', "--resource", 'Service::"web"',
        "--now", now,
    )  # fmt: skip
    assert result.exit_code == code
    assert result.stdout.splitlines()[0] == first


@pytest.mark.requirement("G4")
def test_check_denies_when_a_forbid_errors_and_shows_the_engine_error() -> None:
    result = run(
        "check", str(BUNDLES / "overflow"), "-p", "scaler", "-t", "scale",
        "--args", '{"n": 10000000}',
    )  # fmt: skip
    assert result.exit_code == 2
    assert result.stdout.splitlines()[0] == "refused: not_permitted"
    assert "engine error: " in result.stdout
    assert "overflow" in result.stdout


@pytest.mark.parametrize("tool", ["send_money", "wire_all_funds"])
def test_check_answers_unknown_tool_for_a_hidden_or_undeclared_tool(
    banking_dir: Path, tool: str
) -> None:
    result = run("check", str(banking_dir), "-p", "support-bot", "-t", tool)
    assert result.exit_code == 2
    assert result.stdout.splitlines()[0] == "refused: unknown_tool"


def test_check_reports_invalid_arguments_with_the_detail(banking_dir: Path) -> None:
    result = run(
        "check", str(banking_dir), "-p", "billing-bot", "-t", "get_transactions",
        "--args", '{"limit": 1.00001}',
    )  # fmt: skip
    assert result.exit_code == 2
    assert result.stdout.splitlines()[0] == "refused: invalid_arguments"
    assert "  detail: " in result.stdout


@pytest.mark.parametrize(
    "extra",
    [
        ["-t", "get_balance", "--args", "{not json"],
        ["-t", "get_balance", "--args", "[1, 2]"],
        ["-t", "get_balance", "--resource", "no-type"],
        ["-t", "get_balance", "-p", 'Agent::"unterminated'],
        ["--principal", "billing-bot"],
    ],
    ids=["bad JSON", "JSON not an object", "bare resource", "bad principal", "missing --tool"],
)
def test_check_usage_errors_exit_1_never_2(banking_dir: Path, extra: list[str]) -> None:
    args = ["check", str(banking_dir), *extra]
    if "-p" not in extra and "--principal" not in extra:
        args += ["-p", "billing-bot"]
    result = run(*args)
    assert result.exit_code == 1
    assert result.stdout == ""


def test_check_with_an_impossible_tool_name_is_one_error_line(banking_dir: Path) -> None:
    result = run("check", str(banking_dir), "-p", "billing-bot", "-t", "no such tool")
    assert result.exit_code == 1
    assert len(error_lines(result)) == 1


def test_check_on_a_broken_bundle_prints_its_problems(tmp_path: Path, banking_dir: Path) -> None:
    shutil.copytree(banking_dir, tmp_path / "p")
    (tmp_path / "p" / "reads.cedar").write_text("permit (principal, action, resource")
    result = run("check", str(tmp_path / "p"), "-p", "billing-bot", "-t", "get_balance")
    assert result.exit_code == 1
    assert error_lines(result)[0].startswith("error: reads.cedar:")


# -- explain ----------------------------------------------------------------------


def test_explain_states_billing_bots_boundary_from_the_descriptions(banking_dir: Path) -> None:
    result = run("explain", str(banking_dir), "--principal", "billing-bot")
    assert result.exit_code == 0
    out = result.stdout
    bundle = PolicyBundle.from_directory(banking_dir)
    for pid in ("payments.small-known", "payments.large-known", "reads.billing"):
        description = bundle.policies[pid].description
        assert description is not None
        assert description in out
    assert "needs approval from finance" in out
    assert "never when: Once content from outside" in out
    assert "update_password: available" not in out
    assert out.splitlines()[-1] == "not available: update_password"


def test_explain_hides_payments_and_documents_from_support_bot(banking_dir: Path) -> None:
    result = run("explain", str(banking_dir), "-p", 'Agent::"support-bot"')
    assert result.exit_code == 0
    assert "send_money: available" not in result.stdout
    assert "get_balance: available" in result.stdout
    last = result.stdout.splitlines()[-1]
    assert last == "not available: read_document, send_money, update_password"


def test_explain_json_gives_conditions_obligations_resources_and_forbids(
    banking_dir: Path,
) -> None:
    result = run("explain", str(banking_dir), "-p", "billing-bot", "--json")
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    assert data["principal"] == 'Agent::"billing-bot"'
    tools = {t["tool"]: t for t in data["tools"]}
    assert tools["update_password"] == {"tool": "update_password", "available": False}
    send = tools["send_money"]
    permits = {p["id"]: p for p in send["allowed_by"]}
    assert set(permits) == {"payments.small-known", "payments.large-known"}
    assert permits["payments.large-known"]["obligations"] == ["needs approval from finance"]
    assert permits["payments.small-known"]["conditional"] is True
    assert permits["payments.small-known"]["resource"] == 'resource in PayeeList::"known"'
    assert {p["id"] for p in send["never"]} == {
        "session.untrusted-no-payments",
        "payments.positive",
        "guard.no-secrets-in-arguments",
    }
    assert tools["get_balance"]["allowed_by"][0]["conditional"] is False


def test_explain_shows_nothing_available_to_an_unknown_agent(banking_dir: Path) -> None:
    result = run("explain", str(banking_dir), "-p", "nobody")
    assert result.exit_code == 0
    assert ": available" not in result.stdout


# -- test -----------------------------------------------------------------------------


def _cases(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "cases.yaml"
    path.write_text(text)
    return path


GOOD_CASE = """
  - name: billing reads the balance
    principal: billing-bot
    tool: get_balance
    expect: allow
"""


def test_test_uses_the_directory_given_in_place_of_the_files_bundle_key(
    tmp_path: Path, banking_dir: Path
) -> None:
    path = _cases(tmp_path, f"bundle: no/such/dir\ncases:{GOOD_CASE}")
    assert run("test", str(path)).exit_code == 1
    result = run("test", str(banking_dir), str(path))
    assert result.exit_code == 0
    assert result.stdout.splitlines()[-1] == "1 passed, 0 failed"


def test_test_reports_a_failing_case_and_exits_1(tmp_path: Path, banking_dir: Path) -> None:
    wrong = GOOD_CASE.replace("allow", "not_permitted").replace("billing reads", "wrong")
    path = _cases(tmp_path, f"bundle: {banking_dir}\ncases:{GOOD_CASE}{wrong}")
    result = run("test", str(path))
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert lines[1] == "PASS  billing reads the balance"
    assert lines[2].startswith("FAIL  wrong the balance: expected not_permitted, got allow")
    assert lines[-1] == "1 passed, 1 failed"


@pytest.mark.parametrize(
    ("cases", "named"),
    [
        (GOOD_CASE + "  - {name: x, principal: b, tool: get_balance}\n", ["cases[1]", "'expect'"]),
        (GOOD_CASE.replace("expect: allow", "expect: alow"), ["cases[0]", "'expect'"]),
        (GOOD_CASE + "    expects: allow\n", ["cases[0]", "'expects'"]),
        (GOOD_CASE + "    errors: true\n", ["cases[0]", "'errors'"]),
        (GOOD_CASE + "    labels: untrusted\n", ["cases[0]", "'labels'"]),
        (GOOD_CASE + "    now: tomorrow\n", ["cases[0]", "'now'"]),
        (GOOD_CASE + "    args: {a: [1\n", ["cases.yaml:", "invalid YAML"]),
        (" 3\n", ["'cases' must be a list"]),
    ],
    ids=[
        "missing key",
        "unknown code",
        "unknown key",
        "errors without not_permitted",
        "labels not a list",
        "now not a number",
        "YAML syntax",
        "cases not a list",
    ],
)
def test_test_rejects_a_malformed_case_file_naming_the_case_and_key(
    tmp_path: Path, banking_dir: Path, cases: str, named: list[str]
) -> None:
    path = _cases(tmp_path, f"bundle: {banking_dir}\ncases:{cases}")
    result = run("test", str(path))
    assert result.exit_code == 1
    (line,) = error_lines(result)
    for part in named:
        assert part in line


def test_test_rejects_a_bad_tool_declaration(tmp_path: Path, banking_dir: Path) -> None:
    tools = "tools:\n  get_balance: {parameters: {type: array}}\n"
    path = _cases(tmp_path, f"bundle: {banking_dir}\n{tools}cases:{GOOD_CASE}")
    result = run("test", str(path))
    assert result.exit_code == 1
    assert "tools.get_balance" in error_lines(result)[0]


def test_test_with_only_a_directory_is_an_error(banking_dir: Path) -> None:
    result = run("test", str(banking_dir))
    assert result.exit_code == 1
    assert len(error_lines(result)) == 1


# -- audit ------------------------------------------------------------------------------


@pytest.fixture
def audit_log(tmp_path: Path, banking_dir: Path) -> Path:
    """A real SQLite audit log written by a gate: allows, denials and outcomes."""
    db = tmp_path / "audit.db"
    store = SQLiteStore(db)
    gate = Gate.from_directory(banking_dir, store=store, clock=ManualClock())
    gate.register("get_balance", {"type": "object"}, lambda: 100.0)
    gate.register(
        "send_money", SEND_SCHEMA, lambda **_: "sent", resource=lambda a: ("Payee", a["recipient"])
    )
    billing, session = Principal.agent("billing-bot"), Session("audit-test")
    gate.call(billing, "get_balance", {}, session)
    for amount in (42.5, -5.0, 1200.0):
        gate.call(billing, "send_money", json.loads(pay(amount)), session)
    gate.call(Principal.agent("support-bot"), "send_money", json.loads(pay(1.0)), session)
    store.close()
    return db


def _rows(db: Path) -> list[tuple[int, str, bytes]]:
    with closing(sqlite3.connect(db)) as c:
        return c.execute("SELECT seq, hash, body FROM audit ORDER BY seq").fetchall()


def _sql(db: Path, sql: str, *params: Any) -> None:
    with closing(sqlite3.connect(db)) as c:
        c.execute(sql, params)
        c.commit()


def test_audit_verify_accepts_an_untouched_log(audit_log: Path) -> None:
    rows = _rows(audit_log)
    result = run("audit", "verify", str(audit_log))
    assert result.exit_code == 0
    assert result.stdout == f"ok: {len(rows)} records, head {rows[-1][1]}\n"


@pytest.mark.requirement("G12")
def test_audit_verify_names_the_record_with_a_flipped_byte(audit_log: Path) -> None:
    seq, _, body = _rows(audit_log)[3]
    flipped = bytearray(body)
    flipped[len(flipped) // 2] ^= 0x01
    _sql(audit_log, "UPDATE audit SET body = ? WHERE seq = ?", bytes(flipped), seq)
    result = run("audit", "verify", str(audit_log))
    assert result.exit_code == 1
    (line,) = error_lines(result)
    assert line.startswith("error: record 3: ")


@pytest.mark.requirement("G12")
def test_audit_verify_names_the_gap_left_by_a_deleted_record(audit_log: Path) -> None:
    _sql(audit_log, "DELETE FROM audit WHERE seq = 2")
    result = run("audit", "verify", str(audit_log))
    assert result.exit_code == 1
    assert error_lines(result)[0].startswith("error: record 2: ")


@pytest.mark.requirement("G12")
def test_audit_verify_catches_two_records_swapped(audit_log: Path) -> None:
    rows = _rows(audit_log)
    for seq, (_, h, body) in ((1, rows[2]), (2, rows[1])):
        _sql(audit_log, "UPDATE audit SET hash = ?, body = ? WHERE seq = ?", h, body, seq)
    result = run("audit", "verify", str(audit_log))
    assert result.exit_code == 1
    assert error_lines(result)[0].startswith("error: record 1: ")


@pytest.mark.requirement("G12")
def test_audit_verify_catches_truncation_against_an_exported_checkpoint(
    audit_log: Path, tmp_path: Path
) -> None:
    checkpoint = tmp_path / "checkpoint.json"
    assert run("audit", "checkpoint", str(audit_log), "--out", str(checkpoint)).exit_code == 0
    size = len(_rows(audit_log))
    _sql(audit_log, "DELETE FROM audit WHERE seq >= ?", size - 2)
    assert run("audit", "verify", str(audit_log)).exit_code == 0  # a shorter chain is still a chain
    result = run("audit", "verify", str(audit_log), "--checkpoint", str(checkpoint))
    assert result.exit_code == 1
    assert error_lines(result)[0].startswith(f"error: record {size - 2}: ")


@pytest.mark.requirement("G12")
def test_audit_verify_catches_garbage_appended_at_the_end(audit_log: Path) -> None:
    size = len(_rows(audit_log))
    _sql(audit_log, "INSERT INTO audit VALUES (?, ?, ?)", size, "0" * 64, b"garbage")
    result = run("audit", "verify", str(audit_log))
    assert result.exit_code == 1
    assert error_lines(result)[0].startswith(f"error: record {size}: ")


def test_audit_verify_passes_against_a_matching_checkpoint(audit_log: Path, tmp_path: Path) -> None:
    checkpoint = tmp_path / "checkpoint.json"
    run("audit", "checkpoint", str(audit_log), "--out", str(checkpoint))
    result = run("audit", "verify", str(audit_log), "--checkpoint", str(checkpoint))
    assert result.exit_code == 0
    assert result.stdout.startswith(f"ok: {len(_rows(audit_log))} records, head ")


@pytest.mark.parametrize("text", ["not json", '{"size": -1, "head": "x"}', "[1]"])
def test_audit_verify_rejects_a_malformed_checkpoint(
    audit_log: Path, tmp_path: Path, text: str
) -> None:
    checkpoint = tmp_path / "checkpoint.json"
    checkpoint.write_text(text)
    result = run("audit", "verify", str(audit_log), "--checkpoint", str(checkpoint))
    assert result.exit_code == 1
    assert len(error_lines(result)) == 1


def test_audit_checkpoint_prints_size_and_head(audit_log: Path) -> None:
    rows = _rows(audit_log)
    result = run("audit", "checkpoint", str(audit_log))
    assert result.exit_code == 0
    assert json.loads(result.stdout) == {"size": len(rows), "head": rows[-1][1]}


def test_audit_tail_shows_the_last_records_oldest_first(audit_log: Path) -> None:
    rows = _rows(audit_log)
    result = run("audit", "tail", str(audit_log), "-n", "3")
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert [line.split()[0] for line in lines] == [f"#{seq}" for seq, _, _ in rows[-3:]]
    assert "unknown_tool" in lines[-1]


def test_audit_tail_json_gives_records_with_their_hashes(audit_log: Path) -> None:
    rows = _rows(audit_log)
    result = run("audit", "tail", str(audit_log), "-n", "2", "--json")
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(r["seq"], r["hash"]) for r in records] == [(s, h) for s, h, _ in rows[-2:]]
    assert run("audit", "tail", str(audit_log), "-n", "0").stdout == ""


def test_audit_tail_survives_an_unreadable_record(audit_log: Path) -> None:
    _sql(audit_log, "UPDATE audit SET body = ? WHERE seq = 0", b"\xff not json")
    result = run("audit", "tail", str(audit_log), "-n", "100")
    assert result.exit_code == 0
    assert "unreadable record" in result.stdout.splitlines()[0]


def test_audit_export_writes_each_record_with_a_hash_that_rechecks(
    audit_log: Path, tmp_path: Path
) -> None:
    result = run("audit", "export", str(audit_log))
    assert result.exit_code == 0
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(records) == len(_rows(audit_log))
    for record in records:
        claimed = record.pop("hash")
        assert digest(AUDIT_DOMAIN, canonical_json(record)) == claimed
    out = tmp_path / "export.jsonl"
    assert run("audit", "export", str(audit_log), "--out", str(out)).exit_code == 0
    assert out.read_text() == result.stdout


@pytest.mark.parametrize("command", ["verify", "tail", "export", "checkpoint"])
def test_audit_commands_never_create_a_log_at_a_mistyped_path(tmp_path: Path, command: str) -> None:
    missing = tmp_path / "typo.db"
    result = run("audit", command, str(missing))
    assert result.exit_code == 1
    assert error_lines(result) == [f"error: no audit log at {missing}"]
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("content", [b"just text", b""])
def test_audit_refuses_a_file_that_is_not_an_audit_log(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "other.db"
    path.write_bytes(content)
    result = run("audit", "verify", str(path))
    assert result.exit_code == 1
    assert len(error_lines(result)) == 1


# -- the console script ----------------------------------------------------------------


def test_the_installed_script_validates_and_rejects_with_file_and_line(
    tmp_path: Path, banking_dir: Path
) -> None:
    assert script("validate", str(banking_dir)).returncode == 0
    shutil.copytree(banking_dir, tmp_path / "p")
    payments = tmp_path / "p" / "payments.cedar"
    payments.write_text(payments.read_text().replace("amount.lessThan", "amuont.lessThan"))
    done = script("validate", str(tmp_path / "p"))
    assert done.returncode == 1
    assert done.stderr.startswith("error: payments.cedar:3: ")


def test_the_installed_script_exits_2_for_a_refused_check(banking_dir: Path) -> None:
    done = script("check", str(banking_dir), "-p", "support-bot", "-t", "send_money")
    assert done.returncode == 2
    assert done.stdout.startswith("refused: unknown_tool\n")


@pytest.mark.requirement("G12")
def test_the_installed_script_fails_verify_on_a_tampered_log(audit_log: Path) -> None:
    assert script("audit", "verify", str(audit_log)).returncode == 0
    _sql(audit_log, "DELETE FROM audit WHERE seq = 0")
    done = script("audit", "verify", str(audit_log))
    assert done.returncode == 1
    assert done.stderr.startswith("error: record 0: ")


def test_the_installed_script_runs_the_case_corpus() -> None:
    files = sorted(str(p) for p in (ROOT / "tests" / "cases").glob("*.yaml"))
    done = script("test", *files)
    assert done.returncode == 0, done.stdout
    assert done.stdout.splitlines()[-1].endswith(" 0 failed")


def test_main_turns_an_unexpected_exception_into_one_error_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], banking_dir: Path
) -> None:
    def explode(*_: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(PolicyBundle, "from_directory", explode)
    monkeypatch.setattr(sys, "argv", ["warded", "validate", str(banking_dir)])
    with pytest.raises(SystemExit) as exited:
        main()
    assert exited.value.code == 1
    assert capsys.readouterr().err == "error: internal error: RuntimeError: boom\n"
