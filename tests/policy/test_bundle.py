"""G5: only a valid bundle is ever live; problems name their file and line."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import policy_strategies as gen
from support import session_with
from warded import BundleError, BundleFiles, Gate, PolicyBundle, Principal, Session
from warded.policy.annotations import PERIODS, Budget, Rate
from warded.policy.bundle import bundle_version
from warded.policy.source import DirectorySource

BANKING = Path(__file__).resolve().parents[2] / "examples" / "banking" / "policies"
BANKING_FILES = DirectorySource(BANKING).read()
KNOWN_PAYEE = "GB33BUKB20201555555555"


def line_of(text: str, needle: str) -> int:
    """The 1-based line on which `needle` starts in `text`."""
    assert text.count(needle) == 1, needle
    return text[: text.index(needle)].count("\n") + 1


def banking_text(name: str) -> str:
    return (BANKING / name).read_text(encoding="utf-8")


# -- one broken file at a time -------------------------------------------------------


@dataclass(frozen=True)
class Breakage:
    file: str
    old: str
    new: str
    where: set[tuple[str, int | None]]  # every (file, line) the problems must name

    def apply(self, directory: Path) -> None:
        path = directory / self.file
        text = path.read_text(encoding="utf-8")
        assert text.count(self.old) == 1, self.old
        path.write_text(text.replace(self.old, self.new), encoding="utf-8")


PAYMENTS = banking_text("payments.cedar")
READS = banking_text("reads.cedar")
GUARDS = banking_text("guards.cedar")
SCHEMA = banking_text("schema.cedarschema")
ENTITIES = banking_text("entities.json")
SMALL = line_of(PAYMENTS, '@id("payments.small-known")')
LARGE = line_of(PAYMENTS, '@id("payments.large-known")')

BREAKAGES = {
    "typo'd attribute": Breakage(
        "payments.cedar",
        'context.args.amount.lessThan(decimal("100.0"))',
        'context.args.amout.lessThan(decimal("100.0"))',
        {("payments.cedar", SMALL)},
    ),
    "unknown action": Breakage(
        "reads.cedar",
        'action == Action::"read_document"',
        'action == Action::"read_documents"',
        {("reads.cedar", line_of(READS, '@id("documents.billing")'))},
    ),
    "truncated mid-policy": Breakage(
        "payments.cedar",
        PAYMENTS[PAYMENTS.index("context.args.amount.greaterThanOrEqual") :],
        "context.args.amount.great",
        {("payments.cedar", LARGE)},
    ),
    "@rate not a rate": Breakage(
        "payments.cedar", '@approval("finance")', '@rate("fast")', {("payments.cedar", LARGE)}
    ),
    "@budget without a path": Breakage(
        "payments.cedar",
        '@approval("finance")',
        '@budget("amount 5")',
        {("payments.cedar", LARGE)},
    ),
    "@approval empty": Breakage(
        "payments.cedar", '@approval("finance")', '@approval("")', {("payments.cedar", LARGE)}
    ),
    "obligation on a forbid": Breakage(
        "guards.cedar",
        '@id("credentials.never")',
        '@id("credentials.never")\n@rate("5/minute")',
        {("guards.cedar", line_of(GUARDS, '@id("credentials.never")'))},
    ),
    "duplicate @id in one file": Breakage(
        "reads.cedar",
        '@id("reads.support")',
        '@id("reads.billing")',
        {("reads.cedar", line_of(READS, '@id("reads.support")'))},
    ),
    "duplicate @id across files": Breakage(
        "reads.cedar",
        '@id("documents.billing")',
        '@id("payments.positive")',
        {("reads.cedar", line_of(READS, '@id("documents.billing")'))},
    ),
    "schema syntax error": Breakage(
        "schema.cedarschema",
        "entity Tool;",
        "entty Tool;",
        {("schema.cedarschema", line_of(SCHEMA, "entity Tool;"))},
    ),
    "entity of an unknown type": Breakage(
        "entities.json",
        '"parents": [{"type": "Team", "id": "billing"}]',
        '"parents": [{"type": "Teem", "id": "billing"}]',
        {("entities.json", None)},
    ),
    "context without session": Breakage(
        "schema.cedarschema",
        "context: { args: { limit: Long }, session: Session, now: Now, scan: Scan }",
        "context: { args: { limit: Long }, now: Now, scan: Scan }",
        {("schema.cedarschema", None)},
    ),
    "context without now": Breakage(
        "schema.cedarschema",
        "context: { args: { path: String }, session: Session, now: Now, scan: Scan }",
        "context: { args: { path: String }, session: Session, scan: Scan }",
        {("schema.cedarschema", None)},
    ),
}


@pytest.fixture
def banking_copy(tmp_path: Path) -> Path:
    target = tmp_path / "policies"
    shutil.copytree(BANKING, target)
    return target


def probe(gate: Gate) -> list[Any]:
    """What a set of calls would get now, and what each agent is shown."""
    billing, support = Principal.agent("billing-bot"), Principal.agent("support-bot")
    pay = {"recipient": KNOWN_PAYEE, "amount": 42.5, "subject": "s"}
    calls = [
        (billing, "send_money", pay, ()),
        (billing, "send_money", {**pay, "amount": 500.0}, ()),
        (billing, "send_money", pay, ("untrusted",)),
        (billing, "read_document", {"path": "x"}, ()),
        (support, "get_balance", {}, ()),
        (support, "send_money", pay, ()),
        (billing, "update_password", {"password": "p"}, ()),
    ]
    answers: list[Any] = [
        gate.decide(p, t, a, session_with(gate, labels)) for p, t, a, labels in calls
    ]
    answers += [[spec.name for spec in gate.tools(p)] for p in (billing, support)]
    return answers


@pytest.mark.requirement("G5")
@pytest.mark.parametrize("case", list(BREAKAGES), ids=str)
def test_a_broken_bundle_is_rejected_naming_the_file_and_line_of_each_problem(
    banking_copy: Path, case: str
) -> None:
    breakage = BREAKAGES[case]
    PolicyBundle.from_directory(banking_copy)  # loads before the breakage
    breakage.apply(banking_copy)
    with pytest.raises(BundleError) as caught:
        PolicyBundle.from_directory(banking_copy)
    assert caught.value.problems
    assert {(p.file, p.line) for p in caught.value.problems} == breakage.where


@pytest.mark.requirement("G5")
@pytest.mark.parametrize("case", list(BREAKAGES), ids=str)
def test_a_rejected_reload_leaves_the_running_bundle_and_its_decisions_untouched(
    banking_copy: Path, case: str
) -> None:
    executed: list[Any] = []
    gate = Gate.from_directory(banking_copy)
    gen.register_banking_tools(gate, executed)
    version, before = gate.version, probe(gate)
    BREAKAGES[case].apply(banking_copy)
    with pytest.raises(BundleError):
        gate.reload()  # from the gate's own source
    with pytest.raises(BundleError):
        gate.reload(banking_copy)
    with pytest.raises(BundleError):
        gate.reload(DirectorySource(banking_copy).read())
    assert gate.version == version
    assert probe(gate) == before
    answer = gate.call(Principal.agent("support-bot"), "get_balance", {}, Session("s"))
    assert answer == 100.0
    record = [r.body for r in gate.store.records() if r.body["kind"] == "decision"][-1]
    assert record["bundle_version"] == version


@pytest.mark.requirement("G5")
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_a_file_cut_inside_a_policy_is_rejected_at_that_policy(data: st.DataObject) -> None:
    from warded.policy.locate import statements

    name = data.draw(st.sampled_from(["payments.cedar", "reads.cedar", "guards.cedar"]))
    text = banking_text(name)
    spans = []
    for line, statement in statements(text):
        start = text.index(statement)
        spans.append((line, start, start + len(statement) - 1))  # up to, not incl. the ';'
    line, start, end = data.draw(st.sampled_from(spans))
    cut = data.draw(st.integers(start + 1, end))
    files = dict(BANKING_FILES.policies)
    files[name] = text[:cut]
    with pytest.raises(BundleError) as caught:
        PolicyBundle.load(
            BundleFiles(tuple(files.items()), BANKING_FILES.schema, BANKING_FILES.entities)
        )
    assert {(p.file, p.line) for p in caught.value.problems} == {(name, line)}


# -- fuzzed text ---------------------------------------------------------------------

CEDARISH = st.sampled_from(
    [
        *"(){}[];,.:=!<>&|+-*\"'@?\\/ \n\t0123456789",
        *("permit", "forbid", "when", "unless", "principal", "action", "resource", "context"),
        *("in", "is", "has", "like", "if", "then", "else", "true", "false", "::", "==", "&&"),
        *('Action::"send_money"', 'Team::"billing"', "decimal(", "@id(", "\u0430", "\x00", "é"),
    ]
)


@st.composite
def mutated(draw: st.DrawFn, text: str) -> str:
    for _ in range(draw(st.integers(1, 4))):
        n = len(text)
        a = draw(st.integers(0, n))
        b = draw(st.integers(a, min(n, a + 40)))
        kind = draw(st.sampled_from(["delete", "insert", "replace", "duplicate", "truncate"]))
        if kind == "delete":
            text = text[:a] + text[b:]
        elif kind == "insert":
            text = text[:a] + "".join(draw(st.lists(CEDARISH, max_size=6))) + text[a:]
        elif kind == "replace":
            text = text[:a] + draw(st.text(max_size=8)) + text[b:]
        elif kind == "duplicate":
            text = text[:b] + text[a:b] + text[b:]
        else:
            text = text[:a]
    return text


def load_or_bundle_error(files: BundleFiles) -> None:
    try:
        PolicyBundle.load(files)
    except BundleError as exc:
        problems = exc.problems
    else:
        return
    assert problems
    for problem in problems:
        assert isinstance(problem.file, str)
        assert problem.line is None or problem.line >= 1


@pytest.mark.requirement("G5")
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_mutated_policy_text_is_loaded_or_rejected_with_a_bundle_error(data: st.DataObject) -> None:
    files = dict(BANKING_FILES.policies)
    name = data.draw(st.sampled_from(sorted(files)))
    files[name] = data.draw(mutated(files[name]))
    load_or_bundle_error(
        BundleFiles(tuple(files.items()), BANKING_FILES.schema, BANKING_FILES.entities)
    )


@pytest.mark.requirement("G5")
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_mutated_schema_and_entities_are_loaded_or_rejected_with_a_bundle_error(
    data: st.DataObject,
) -> None:
    schema_name, schema = BANKING_FILES.schema
    entities_name, entities = BANKING_FILES.entities  # type: ignore[misc]
    if data.draw(st.booleans()):
        schema = data.draw(mutated(schema))
    else:
        entities = data.draw(mutated(entities))
    load_or_bundle_error(
        BundleFiles(BANKING_FILES.policies, (schema_name, schema), (entities_name, entities))
    )


@pytest.mark.requirement("G5")
@settings(max_examples=60, deadline=None)
@given(text=st.text(max_size=200))
def test_arbitrary_text_as_a_policy_file_is_loaded_or_rejected_with_a_bundle_error(
    text: str,
) -> None:
    files = (*BANKING_FILES.policies, ("fuzz.cedar", text))
    load_or_bundle_error(BundleFiles(files, BANKING_FILES.schema, BANKING_FILES.entities))


DEEP = {
    "a 2000-term disjunction": (
        "policy",
        "permit (principal, action, resource) when { "
        + " || ".join(["context.now.hour == 1"] * 2000)
        + " };",
    ),
    "1000 nested parentheses": (
        "policy",
        "permit (principal, action, resource) when { " + "(" * 1000 + "true" + ")" * 1000 + " };",
    ),
    "800 nested set literals": (
        "policy",
        "permit (principal, action, resource) when { " + "[" * 800 + "]" * 800 + " == [] };",
    ),
    # Under the loader's 100,000-character statement limit, past what its big stack holds.
    "49000 nested parentheses": (
        "policy",
        "permit (principal, action, resource) when { "
        + "(" * 49_000
        + "true"
        + ")" * 49_000
        + " };",
    ),
    "49000 nested set literals": (
        "policy",
        "permit (principal, action, resource) when { " + "[" * 49_000 + "]" * 49_000 + " == [] };",
    ),
}

_CHILD = """
import json, sys
from warded import BundleError, BundleFiles, PolicyBundle
from warded.policy.source import DirectorySource
where, text = json.loads(sys.stdin.read())
files = DirectorySource(sys.argv[1]).read()
policies, schema = files.policies, files.schema
if where == "policy":
    policies = (*policies, ("deep.cedar", text))
else:
    schema = (schema[0], text)
try:
    PolicyBundle.load(BundleFiles(policies, schema, files.entities))
    print("loaded")
except BundleError:
    print("BundleError")
"""


@pytest.mark.requirement("G5")
@pytest.mark.parametrize("case", list(DEEP), ids=str)
def test_deeply_nested_text_is_rejected_without_crashing_the_process(case: str) -> None:
    # Run in a child: a native stack overflow in the parser would take pytest down with it.
    where, text = DEEP[case]
    child = subprocess.run(
        [sys.executable, "-c", _CHILD, str(BANKING)],
        input=json.dumps([where, text]),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert child.returncode == 0, f"loader process died with {child.returncode}"
    assert child.stdout.strip() in {"loaded", "BundleError"}


# -- annotations ---------------------------------------------------------------------


@pytest.mark.requirement("G5")
def test_annotations_become_policy_info_fields() -> None:
    extra = (
        '\n@description("Bots may run the admin tool, within limits.")'
        '\n@owner("platform")\n@approval("ops.oncall")'
        '\n@rate("20/minute per tool")\n@budget("args.amount 500.25/day")'
    )
    text = gen.Policy("permit", "principal is Bot", 'action == Action::"admin"').text(
        "bots.admin", extra
    )
    plain = gen.Policy("forbid", clauses=('when { context.args.who == "x" }',)).text("x")
    plain = plain.replace('@id("x")\n', "")  # no @id: named by file and line
    bundle = PolicyBundle.load(
        BundleFiles(
            (("a.cedar", text + "\n" + plain),),
            ("schema.cedarschema", gen.SCHEMA),
            ("entities.json", gen.with_approvers("ops.oncall")),
        )
    )
    info = bundle.policies["bots.admin"]
    assert (info.id, info.effect, info.file, info.line) == ("bots.admin", "permit", "a.cedar", 1)
    assert info.description == "Bots may run the admin tool, within limits."
    assert info.owner == "platform"
    assert info.approval == "ops.oncall"
    assert info.rate == Rate(20, 60, "principal_tool")
    assert info.budget == Budget(("args", "amount"), Decimal("500.25"), 86400)
    unnamed = bundle.policies[f"a.cedar:{line_of(text + chr(10) + plain, 'forbid (')}"]
    assert (unnamed.effect, unnamed.description, unnamed.owner) == ("forbid", None, None)
    assert (unnamed.approval, unnamed.rate, unnamed.budget) == (None, None, None)


@pytest.mark.requirement("G5")
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    limit=st.integers(1, 10**6),
    period=st.sampled_from(sorted(PERIODS)),
    per_tool=st.booleans(),
    budget=st.decimals(min_value=Decimal("0.01"), max_value=Decimal("100000"), places=2),
    attribute=st.sampled_from(["amount", "n"]),
    group=st.from_regex(r"[A-Za-z0-9_.:-]{1,64}", fullmatch=True),
    spaces=st.sampled_from(["", " ", "  "]),
)
def test_obligation_annotations_round_trip_through_their_text(
    limit, period, per_tool, budget, attribute, group, spaces
) -> None:
    rate_text = f"{spaces}{limit}{spaces}/{spaces}{period}" + (" per tool" if per_tool else "")
    budget_text = f"args.{attribute} {budget}/{spaces}{period}"

    def info_for(rate: str, budget_: str, approval: str):  # type: ignore[no-untyped-def]
        extra = f'\n@rate("{rate}")\n@budget("{budget_}")\n@approval("{approval}")'
        text = gen.Policy("permit").text("p", extra)
        files = BundleFiles(
            (("a.cedar", text),),
            ("schema.cedarschema", gen.SCHEMA),
            ("entities.json", gen.with_approvers(approval)),
        )
        return PolicyBundle.load(files).policies["p"]

    first = info_for(rate_text, budget_text, group)
    assert first.rate == Rate(limit, PERIODS[period], "principal_tool" if per_tool else "principal")
    assert first.budget == Budget(("args", attribute), budget, PERIODS[period])
    assert first.approval == group
    again = info_for(str(first.rate), str(first.budget), first.approval)
    assert (again.rate, again.budget, again.approval) == (first.rate, first.budget, first.approval)


# -- the version is a content hash ---------------------------------------------------


@pytest.mark.requirement("G5")
def test_the_same_files_give_the_same_version_however_they_are_read(banking_copy: Path) -> None:
    a = PolicyBundle.from_directory(BANKING)
    b = PolicyBundle.from_directory(banking_copy)
    c = PolicyBundle.load(DirectorySource(BANKING).read())
    assert a.version == b.version == c.version
    assert Gate(a).version == a.version


def _edit(files: BundleFiles, which: int, edit: Callable[[str], str]) -> BundleFiles:
    """Apply `edit` to one file's text: a policy file by index, or the schema, or entities."""
    policies = list(files.policies)
    if which < len(policies):
        policies[which] = (policies[which][0], edit(policies[which][1]))
        return BundleFiles(tuple(policies), files.schema, files.entities)
    if which == len(policies):
        return BundleFiles(files.policies, (files.schema[0], edit(files.schema[1])), files.entities)
    assert files.entities is not None
    return BundleFiles(files.policies, files.schema, (files.entities[0], edit(files.entities[1])))


@pytest.mark.requirement("G5")
@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_any_change_to_any_byte_gives_a_different_version(data: st.DataObject) -> None:
    files = BANKING_FILES
    which = data.draw(st.integers(0, len(files.policies) + 1))
    text = ([t for _, t in files.policies] + [files.schema[1], files.entities[1]])[which]  # type: ignore[index]
    at = data.draw(st.integers(0, len(text) - 1))
    kind = data.draw(st.sampled_from(["flip", "insert", "delete"]))
    if kind == "flip":
        new = data.draw(st.characters().filter(lambda c: c != text[at]))
        changed = _edit(files, which, lambda t: t[:at] + new + t[at + 1 :])
    elif kind == "insert":
        new = data.draw(st.characters())
        changed = _edit(files, which, lambda t: t[:at] + new + t[at:])
    else:
        changed = _edit(files, which, lambda t: t[:at] + t[at + 1 :])
    assert bundle_version(changed) != bundle_version(files)


@pytest.mark.requirement("G5")
def test_a_change_that_keeps_every_decision_still_gives_a_new_version() -> None:
    files = BANKING_FILES
    base = PolicyBundle.load(files)
    commented = PolicyBundle.load(_edit(files, 0, lambda t: t + "\n// reviewed\n"))
    renamed = PolicyBundle.load(
        BundleFiles(
            (("0-" + files.policies[0][0], files.policies[0][1]), *files.policies[1:]),
            files.schema,
            files.entities,
        )
    )
    merged = PolicyBundle.load(
        BundleFiles(
            (("all.cedar", "".join(t for _, t in files.policies)),), files.schema, files.entities
        )
    )
    versions = {base.version, commented.version, renamed.version, merged.version}
    assert len(versions) == 4
