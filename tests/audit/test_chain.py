"""G12 tamper evident: every edit, deletion, reordering or truncation is caught by `verify`.

These tests tamper with the in-memory chain (the list of sealed records) and
check that `verify` fails at the first bad record. Truncation of the tail
leaves a valid shorter chain, so it is caught only against a `Checkpoint`
exported before.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from warded import AuditEntry, AuditRecord, Checkpoint, MemoryStore, verify
from warded.audit.record import AUDIT_DOMAIN, seal
from warded.canonical import canonical_json, digest

Records = list[AuditRecord]


def entry(i: int) -> AuditEntry:
    kinds = ("decision", "outcome", "event")
    return AuditEntry(
        kind=kinds[i % 3],  # type: ignore[arg-type]
        call=f"call-{i // 2}",
        time=1_767_225_600.0 + i,
        principal='Agent::"billing-bot"',
        tool="send_money",
        args={"amount": i, "subject": f"invoice {i}"},
        decision="allow" if i % 3 == 0 else None,
    )


def chain(n: int) -> tuple[Records, Checkpoint]:
    """A chain of `n` records, appended in batches of one and two, and its checkpoint."""
    store = MemoryStore()
    i = 0
    while i < n:
        size = min(1 + i % 2, n - i)
        store.append([entry(k) for k in range(i, i + size)])
        i += size
    return list(store.records()), store.checkpoint()


def resealed(record: AuditRecord, **changes: Any) -> AuditRecord:
    """`record` with fields changed, canonical, and its own hash recomputed (a forgery)."""
    raw = canonical_json({**record.body, **changes})
    return AuditRecord(record.seq, digest(AUDIT_DOMAIN, raw), raw)


def edited(record: AuditRecord, **changes: Any) -> AuditRecord:
    """`record` with fields changed and re-serialized canonically, old hash kept."""
    return replace(record, raw=canonical_json({**record.body, **changes}))


def flipped(record: AuditRecord, position: int) -> AuditRecord:
    raw = bytearray(record.raw)
    raw[position % len(raw)] ^= 0x01
    return replace(record, raw=bytes(raw))


def assert_fails_at(records: Records, index: int, checkpoint: Checkpoint | None = None) -> None:
    result = verify(records, checkpoint)
    assert result.ok is False
    assert result.first_bad == index
    assert result.reason


# -- each kind of tampering ---------------------------------------------------

N = 8


@pytest.mark.requirement("G12")
def test_an_untouched_chain_verifies_with_and_without_its_checkpoint() -> None:
    records, cp = chain(N)
    assert verify(records).ok
    assert verify(records, cp).ok
    assert (verify(records).size, verify(records).head) == (cp.size, cp.head)


@pytest.mark.requirement("G12")
@pytest.mark.parametrize("index", range(N))
@pytest.mark.parametrize("position", [0, 7, 40, -2])
def test_a_flipped_byte_is_caught_at_its_record(index: int, position: int) -> None:
    records, cp = chain(N)
    records[index] = flipped(records[index], position)
    assert_fails_at(records, index)
    assert_fails_at(records, index, cp)


@pytest.mark.requirement("G12")
@pytest.mark.parametrize("index", range(N))
@pytest.mark.parametrize(
    "change",
    [{"decision": "deny"}, {"tool": "get_balance"}, {"args": {"amount": 1}}, {"seq": 99}],
    ids=["decision", "tool", "args", "seq"],
)
def test_an_edited_field_re_serialized_canonically_is_caught_at_its_record(
    index: int, change: dict[str, Any]
) -> None:
    records, cp = chain(N)
    records[index] = edited(records[index], **change)
    assert_fails_at(records, index)
    assert_fails_at(records, index, cp)


@pytest.mark.requirement("G12")
@pytest.mark.parametrize("index", range(N - 1))
def test_an_edit_with_its_own_hash_recomputed_breaks_the_next_records_link(index: int) -> None:
    records, cp = chain(N)
    records[index] = resealed(records[index], decision="allow", tool="update_password")
    assert_fails_at(records, index + 1)
    assert_fails_at(records, index + 1, cp)


@pytest.mark.requirement("G12")
def test_a_resealed_last_record_is_caught_against_the_checkpoint() -> None:
    records, cp = chain(N)
    records[-1] = resealed(records[-1], reasons=["forged"])
    assert verify(records).ok  # nothing after it links to it
    assert_fails_at(records, N - 1, cp)


@pytest.mark.requirement("G12")
@pytest.mark.parametrize("index", range(N))
def test_a_forged_record_with_a_correct_own_hash_but_a_wrong_prev_is_caught_at_itself(
    index: int,
) -> None:
    records, cp = chain(N)
    records[index] = resealed(records[index], prev="f" * 64)
    assert_fails_at(records, index)
    assert_fails_at(records, index, cp)


@pytest.mark.requirement("G12")
@pytest.mark.parametrize("index", range(N - 1))
def test_a_deleted_record_is_caught_where_it_was(index: int) -> None:
    records, cp = chain(N)
    del records[index]
    assert_fails_at(records, index)
    assert_fails_at(records, index, cp)


@pytest.mark.requirement("G12")
@pytest.mark.parametrize(("i", "j"), [(0, 1), (2, 3), (1, 6), (0, N - 1), (N - 2, N - 1)])
def test_two_swapped_records_are_caught_at_the_first(i: int, j: int) -> None:
    records, cp = chain(N)
    records[i], records[j] = records[j], records[i]
    assert_fails_at(records, i)
    assert_fails_at(records, i, cp)


@pytest.mark.requirement("G12")
@pytest.mark.parametrize("index", range(N))
def test_a_replayed_record_is_caught_where_it_was_inserted(index: int) -> None:
    records, cp = chain(N)
    records.insert(index + 1, records[index])
    assert_fails_at(records, index + 1)
    assert_fails_at(records, index + 1, cp)


@pytest.mark.requirement("G12")
@pytest.mark.parametrize("keep", range(N))
def test_a_truncated_tail_is_caught_only_against_the_checkpoint(keep: int) -> None:
    records, cp = chain(N)
    del records[keep:]
    assert verify(records).ok  # a shorter chain is a valid chain
    assert_fails_at(records, keep, cp)


@pytest.mark.requirement("G12")
@pytest.mark.parametrize("keep", range(N))
def test_a_truncated_tail_regrown_to_the_checkpoint_size_is_caught_at_its_head(keep: int) -> None:
    records, cp = chain(N)
    del records[keep:]
    prev = records[-1].hash if records else "0" * 64
    for seq in range(keep, N):
        records.append(seal(entry(100 + seq), seq, prev))
        prev = records[-1].hash
    assert verify(records).ok
    assert_fails_at(records, N - 1, cp)


@pytest.mark.requirement("G12")
def test_a_chain_that_grew_after_the_checkpoint_still_verifies_against_it() -> None:
    records, cp = chain(N)
    records.append(seal(entry(N), N, records[-1].hash))
    assert verify(records, cp).ok


def _garbage(raw: bytes, *, own_hash: bool) -> AuditRecord:
    return AuditRecord(N, digest(AUDIT_DOMAIN, raw) if own_hash else "0" * 64, raw)


@pytest.mark.requirement("G12")
@pytest.mark.parametrize(
    "garbage",
    [
        _garbage(b"{not json", own_hash=True),
        _garbage(b"{not json", own_hash=False),
        _garbage(b"", own_hash=True),
        _garbage(b"[1,2,3]", own_hash=True),
        _garbage(b"\xff\xfe", own_hash=True),
        _garbage(canonical_json({"seq": N, "prev": "f" * 64}), own_hash=True),
    ],
    ids=["invalid-json", "invalid-json-bad-hash", "empty", "array", "not-utf8", "wrong-prev"],
)
def test_appended_garbage_is_caught_at_its_position(garbage: AuditRecord) -> None:
    records, cp = chain(N)
    records.append(garbage)
    assert_fails_at(records, N)
    assert_fails_at(records, N, cp)


@pytest.mark.requirement("G12")
def test_a_correctly_sealed_record_with_a_wrong_prev_appended_is_caught_at_its_position() -> None:
    records, cp = chain(N)
    records.append(seal(entry(N), N, "f" * 64))
    assert_fails_at(records, N)
    assert_fails_at(records, N, cp)


@pytest.mark.requirement("G12")
def test_a_non_canonical_re_encoding_of_the_same_body_is_caught() -> None:
    records, _ = chain(N)
    raw = json.dumps(records[3].body, indent=1).encode()
    records[3] = AuditRecord(3, digest(AUDIT_DOMAIN, raw), raw)
    assert_fails_at(records, 3)


# -- Hypothesis: a random chain and one random mutation --------------------------

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**53) + 1, 2**53 - 1)
    | st.floats(-1e15, 1e15, allow_nan=False)
    | st.text(max_size=8)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=6,
)
entries = st.builds(
    AuditEntry,
    kind=st.sampled_from(["decision", "outcome", "event"]),
    call=st.text("0123456789abcdef", min_size=1, max_size=16),
    time=st.floats(0, 4e9, allow_nan=False),
    principal=st.none() | st.text(max_size=12),
    tool=st.none() | st.text(max_size=12),
    args=json_values,
    decision=st.sampled_from([None, "allow", "deny"]),
    reasons=st.lists(st.text(max_size=8), max_size=2).map(tuple),
)

Mutation = Callable[[Records, st.DataObject], tuple[Records, int, bool]]


def m_flip(records: Records, data: st.DataObject) -> tuple[Records, int, bool]:
    i = data.draw(st.integers(0, len(records) - 1))
    records[i] = flipped(records[i], data.draw(st.integers(0, 10_000)))
    return records, i, False


def m_edit(records: Records, data: st.DataObject) -> tuple[Records, int, bool]:
    i = data.draw(st.integers(0, len(records) - 1))
    value = data.draw(json_values.filter(lambda v: v != records[i].body["args"]))
    records[i] = edited(records[i], args=value)
    return records, i, False


def m_reseal(records: Records, data: st.DataObject) -> tuple[Records, int, bool]:
    i = data.draw(st.integers(0, len(records) - 1))
    records[i] = resealed(records[i], reasons=[*records[i].body["reasons"], "forged"])
    last = i == len(records) - 1
    return records, (i if last else i + 1), last  # the last one is caught by the checkpoint only


def m_wrong_prev(records: Records, data: st.DataObject) -> tuple[Records, int, bool]:
    i = data.draw(st.integers(0, len(records) - 1))
    forged = data.draw(st.text("0123456789abcdef", min_size=64, max_size=64))
    if forged == records[i].body["prev"]:
        forged = "f" * 64 if forged != "f" * 64 else "e" * 64
    records[i] = resealed(records[i], prev=forged)
    return records, i, False


def m_delete(records: Records, data: st.DataObject) -> tuple[Records, int, bool]:
    i = data.draw(st.integers(0, len(records) - 1))
    del records[i]
    last = i == len(records)
    return records, i, last


def m_swap(records: Records, data: st.DataObject) -> tuple[Records, int, bool]:
    if len(records) < 2:
        return m_flip(records, data)
    i = data.draw(st.integers(0, len(records) - 2))
    j = data.draw(st.integers(i + 1, len(records) - 1))
    records[i], records[j] = records[j], records[i]
    return records, i, False


def m_truncate(records: Records, data: st.DataObject) -> tuple[Records, int, bool]:
    keep = data.draw(st.integers(0, len(records) - 1))
    return records[:keep], keep, True


def m_append_garbage(records: Records, data: st.DataObject) -> tuple[Records, int, bool]:
    raw = data.draw(st.binary(max_size=40))
    records.append(AuditRecord(len(records), digest(AUDIT_DOMAIN, raw), raw))
    return records, len(records) - 1, False


MUTATIONS: dict[str, Mutation] = {
    "flip": m_flip,
    "edit": m_edit,
    "reseal": m_reseal,
    "wrong_prev": m_wrong_prev,
    "delete": m_delete,
    "swap": m_swap,
    "truncate": m_truncate,
    "append_garbage": m_append_garbage,
}


@pytest.mark.requirement("G12")
@settings(max_examples=300, deadline=None)
@given(
    chain_entries=st.lists(entries, min_size=1, max_size=12),
    mutation=st.sampled_from(sorted(MUTATIONS)),
    data=st.data(),
)
def test_any_single_mutation_of_a_random_chain_is_caught_at_the_mutated_index(
    chain_entries: list[AuditEntry], mutation: str, data: st.DataObject
) -> None:
    store = MemoryStore()
    for e in chain_entries:
        store.append([e])
    records, cp = list(store.records()), store.checkpoint()
    assert verify(records, cp).ok

    mutated, index, needs_checkpoint = MUTATIONS[mutation](records, data)

    if needs_checkpoint:
        assert verify(mutated).ok
    else:
        assert_fails_at(mutated, index)
    assert_fails_at(mutated, index, cp)
