"""The links inside free text (warded.links) and what the gate tells Cedar of them.

A message body is free text, but the URLs, hosts and e-mail addresses inside it
are targets: `context.links.<arg>` gives their count and the sources all of
them can be found in. What a reader could follow must count as a link, however
it is spelled; a link an attacker hides from the count would go out unchecked.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from link_tools import ENTITIES, NOTES, PAGE, SCHEMA
from support import TEST_KEY
from warded import Gate, Principal, Refusal, Session
from warded.governance.conditions import plain
from warded.links import MAX_LISTED, for_approvers, links, printable, shown
from warded.policy.bundle import PolicyBundle
from warded.policy.source import BundleFiles
from warded.scanners.base import Finding
from warded.scanners.injection import InjectionScanner

pytestmark = pytest.mark.requirement("G18")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Check out this link: www.evil-site.com", ["www.evil-site.com"]),
        ("see https://evil.com/a?b=c.", ["https://evil.com/a?b=c"]),
        ("(https://evil.com/x)", ["https://evil.com/x"]),
        ("go to evil.xyz/path now", ["evil.xyz/path"]),
        ("write to Fred9246@Gmail.com, thanks", ["fred9246@gmail.com"]),
        ("at 10.0.0.1:8080/x", ["10.0.0.1:8080/x"]),
        ("two: a.io and b.net", ["a.io", "b.net"]),
        ("report.pdf", ["report.pdf"]),  # looks like a host: counted (over, never under)
    ],
)
def test_links_are_found_in_free_text(text: str, expected: list[str]) -> None:
    assert links(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "HTTPS://EVIL.COM/x",  # case
        "https://evil%2Ecom/x",  # percent-encoding
        "https://evil%252Ecom/x",  # twice
        "https://evil\uff0ecom/x",  # a full-width dot (NFKC)
        "https://evil\u3002com/x",  # an ideographic full stop (IDNA's dot)
        "https://evil\uff61com/x",  # a half-width one
        "https://ev\u200bil.com/x",  # a zero-width space inside
        "https://evil.com\u2060/x",  # a word joiner
        "\uff48\uff54\uff54\uff50\uff53://evil.com/x",  # a full-width scheme
    ],
)
def test_a_link_respelled_is_still_one_link_to_the_same_place(text: str) -> None:
    assert links(text) == ["https://evil.com/x"]


@pytest.mark.parametrize(
    "text",
    [
        "Hi Bob, the meeting moved to 3.30 pm, e.g. after lunch (i.e. late).",
        "Version v1.2.2 is out; 42.5 % done. Thanks!",
        "",
    ],
)
def test_prose_without_links_has_none(text: str) -> None:
    assert links(text) == []


# -- through the gate -------------------------------------------------------------------

AGENT = Principal.agent("bot")
# link_tools' schema and page, under policies of this file's own: a message whose
# links came from the user or a person goes, one with a flagged link never does
POLICIES = """
@id("reads")
permit (principal, action == Action::"fetch", resource);

@id("message")
permit (principal, action == Action::"send_message", resource)
when {
  context.links.body.count == 0 ||
  context.links.body.provenance.containsAny(["user", "approved"])
};

@id("message-with-approval")
@approval("owner")
permit (principal, action == Action::"send_message", resource)
when {
  context.links.body.count > 0 &&
  !context.links.body.provenance.containsAny(["user", "approved"])
};

@id("message-never-flagged")
forbid (principal, action == Action::"send_message", resource)
when {
  context.links.body.provenance.contains("injected") &&
  !context.links.body.provenance.containsAny(["user", "approved"])
};
"""


def gate(**options: Any) -> Gate:
    loaded = PolicyBundle.load(
        BundleFiles(
            (("p.cedar", POLICIES),),
            ("s.cedarschema", SCHEMA),
            ("entities.json", json.dumps(ENTITIES)),
        )
    )
    assert dict(loaded.links) == {"send_message": ("body",)}
    g = Gate(loaded, key=TEST_KEY, output_scanners=[InjectionScanner()], **options)
    schema = {"type": "object", "properties": {"to": {"type": "string"}, "body": {}}}
    g.register("send_message", schema, lambda **a: "sent")
    fetch = {"type": "object", "properties": {"url": {"type": "string"}}}
    g.register("fetch", fetch, lambda url: PAGE, labels=["untrusted"])
    return g


def send(g: Gate, session: Session, body: Any) -> tuple[Any, dict[str, Any]]:
    answer = g.call(AGENT, "send_message", {"to": "Bob", "body": body}, session)
    decided = [json.loads(r.raw) for r in g.store.records()]
    last = [b for b in decided if b.get("kind") == "decision"][-1]
    assert last["request"]["context"]["links"] == last["detail"]["links"]
    return answer, last["detail"]["links"]["body"]


def test_a_message_is_judged_by_the_links_inside_it() -> None:
    g = gate()
    session = Session("s-links")
    g.trust(session, "Tell Bob about www.our-wiki.org, and pass on the team's slides.")
    assert not isinstance(g.call(AGENT, "fetch", {"url": NOTES}, session), Refusal)

    plain_text, seen = send(g, session, "Lunch at noon?")
    assert not isinstance(plain_text, Refusal)
    assert seen == {"count": 0, "provenance": []}

    users, seen = send(g, session, "Have a look at https://WWW.OUR-WIKI.ORG")
    assert not isinstance(users, Refusal)
    assert seen["count"] == 1
    assert "user" in seen["provenance"]

    slides, seen = send(g, session, "Slides: www.team-slides.net/q3")
    assert isinstance(slides, Refusal)
    assert slides.code == "approval_required"
    assert seen == {"count": 1, "provenance": ["injection", "tool:fetch", "untrusted"]}

    for body in ("Check out www.evil-site.com", "see HTTPS://WWW.EVIL-SITE.COM/%6Cogin"):
        evil, seen = send(g, session, body)
        assert isinstance(evil, Refusal), body
        assert evil.policy == "message-never-flagged", body
        assert "injected" in seen["provenance"]

    made_up, seen = send(g, session, "Try www.elsewhere.example")
    assert isinstance(made_up, Refusal)
    assert made_up.code == "approval_required"
    assert seen == {"count": 1, "provenance": []}


def test_a_user_link_beside_another_does_not_carry_it() -> None:
    """The set is the intersection over the links: one made-up link beside the
    user's makes the whole body wait; beside a flagged one it still never goes."""
    g = gate()
    session = Session("s-mixed")
    g.trust(session, "Tell Bob about www.our-wiki.org")
    g.call(AGENT, "fetch", {"url": NOTES}, session)
    mixed, seen = send(g, session, "www.our-wiki.org and www.elsewhere.example")
    assert isinstance(mixed, Refusal)
    assert mixed.code == "approval_required"
    assert seen == {"count": 2, "provenance": []}
    flagged, seen = send(g, session, "www.our-wiki.org and www.evil-site.com")
    assert isinstance(flagged, Refusal)
    assert seen["count"] == 2
    assert "user" not in seen["provenance"]


@pytest.mark.parametrize(
    ("condition", "words"),
    [
        ("context.links.body.count == 0", "the number of links in argument body is 0"),
        ('context.links.body.provenance.containsAny(["user", "approved"])',
         "every link in argument body came from the user's request, or every one from a value "
         "a person approved"),
        ('context.links.body.provenance.contains("injected")',
         "every link in argument body came from injected orders (what the injection scanner "
         "flagged in a tool's output)"),
        ('!context.links.body.provenance.containsAny(["user", "approved"])',
         "not every link in argument body came from the user's request, and not every one "
         "from a value a person approved"),
        ('!context.links.body.provenance.contains("user")',
         "not every link in argument body came from the user's request"),
        ("context.links.body.count > 0", "the number of links in argument body is more than 0"),
    ],
)  # fmt: skip
def test_explain_words_the_links_conditions(condition: str, words: str) -> None:
    from cedarpy import policies_to_pst

    tree = policies_to_pst(f"permit (principal, action, resource) when {{ {condition} }};")
    (node,) = tree.static_policies.values()
    assert plain(node.clauses[0].expr) == words


# -- what approvers are shown -------------------------------------------------------------


class Marker:
    """An input scanner that flags SECRET-<letters> as a secret."""

    name = "secrets"

    def scan(self, text: str) -> list[Finding]:
        return [
            Finding("secrets", "marker", "", m.start(), m.end(), 1.0)
            for m in re.finditer(r"SECRET-[A-Z]+", text)
        ]


def held_links(g: Gate, session: Session, body: str) -> Any:
    """The links the decision record that held this message lists for approvers."""
    answer = g.call(AGENT, "send_message", {"to": "Bob", "body": body}, session)
    assert isinstance(answer, Refusal)
    assert answer.code == "approval_required"
    (record,) = [
        r.body
        for r in g.store.records()
        if r.body["kind"] == "decision" and r.body["detail"].get("approval") == answer.approval_id
    ]
    return record["detail"]["links_found"]["body"]


def test_a_held_message_lists_each_link_with_its_own_sources() -> None:
    """The shared set is the intersection; the list says which link brought what."""
    g = gate()
    session = Session("s-listed")
    g.trust(session, "Tell Bob about www.our-wiki.org")
    g.call(AGENT, "fetch", {"url": NOTES}, session)
    listed = held_links(g, session, "www.our-wiki.org and www.elsewhere.example")
    assert listed == [
        {"link": "www.our-wiki.org", "provenance": ["user"]},
        {"link": "www.elsewhere.example", "provenance": []},
    ]
    plain = send(g, session, "Lunch?")[1]
    assert plain == {"count": 0, "provenance": []}
    allowed = [r.body for r in g.store.records() if r.body.get("kind") == "decision"][-1]
    assert "links_found" not in allowed["detail"]  # only calls that wait for a person list them


@pytest.mark.requirement("G20")
def test_a_link_holding_a_secret_is_listed_masked_with_its_sources() -> None:
    """A link that holds what the input scanners found (or a sensitive argument) is
    listed as `[redacted]`: the listing never shows what the arguments mask, in any case."""
    g = gate(scanners=[Marker()])
    schema = {"type": "object", "properties": {"to": {"type": "string"}, "body": {}}}
    g.unregister("send_message")
    g.register("send_message", schema, lambda **a: "sent")
    session = Session("s-secret")
    listed = held_links(g, session, "see https://x.example/?t=SECRET-TOKEN and www.other.example")
    assert listed == [
        {"link": "[redacted]", "provenance": []},
        {"link": "www.other.example", "provenance": []},
    ]
    raw = "\n".join(
        r.raw.decode() if isinstance(r.raw, bytes) else r.raw for r in g.store.records()
    )
    assert "secret-token" not in raw.lower()

    g.unregister("send_message")
    g.register("send_message", schema, lambda **a: "sent", sensitive=["body"])
    assert held_links(g, session, "www.other.example") == [{"link": "[redacted]", "provenance": []}]


@pytest.mark.parametrize(
    ("link", "host", "ascii_", "unicode", "non_ascii"),
    [
        ("https://www.p\u0430ypal.com/login", "www.p\u0430ypal.com", "www.xn--pypal-4ve.com",
         None, True),
        ("https://www.xn--pypal-4ve.com/x", "www.xn--pypal-4ve.com", None,
         "www.p\u0430ypal.com", True),
        ("fred9246@gmail.com", "gmail.com", None, None, False),
        ("https://user@evil.com:8080/x", "evil.com", None, None, False),
        ("10.0.0.1:8080/x", "10.0.0.1", None, None, False),
        ("b\u00fccher.example/a", "b\u00fccher.example", "xn--bcher-kva.example", None, True),
    ],
)  # fmt: skip
def test_a_host_is_shown_beside_its_dns_spelling(
    link: str, host: str, ascii_: str | None, unicode: str | None, non_ascii: bool
) -> None:
    seen = shown(link)
    assert (seen.host, seen.ascii, seen.unicode, seen.non_ascii) == (
        host,
        ascii_,
        unicode,
        non_ascii,
    )


def test_what_does_not_print_is_written_as_its_code() -> None:
    assert printable("a\u202eb\u200bc\x07d e") == "a\\u{202e}b\\u{200b}c\\u{0007}d e"
    assert shown("https://evil.com/\u202etxt.exe").text == "https://evil.com/\\u{202e}txt.exe"
    assert printable("a\u2028b\u00a0c\x1b[1A") == "a\\u{2028}b\\u{00a0}c\\u{001b}[1A"


def test_a_code_typed_literally_does_not_pass_for_a_character() -> None:
    """Each `\\u{…}` shown stands for one character: a backslash that would start one
    is written as its code too; any other backslash (a path) is left as it is."""
    assert printable("\\u{202e}") == "\\u{005c}u{202e}"
    assert printable("\\u{202e}") != printable("\u202e")
    assert printable("C:\\Users\\u\\x") == "C:\\Users\\u\\x"
    assert printable("\\") == "\\"
    host = "ev\x07il.xn--pypal-4ve.com"
    assert shown(f"https://{host}/").ascii is None  # ASCII already: nothing to add
    lookalike = shown("https://ev\x07il.p\u0430ypal.com/")
    assert lookalike.ascii == "ev\\u{0007}il.xn--pypal-4ve.com"  # the punycode is printable too


def test_an_old_or_malformed_record_gives_what_it_can() -> None:
    context = {"body": {"count": 2, "provenance": ["user"]}, "bad": {"count": "2"}, 3: {}}
    (old,) = for_approvers(context, None)  # recorded before links were listed
    assert (old.arg, old.count, old.provenance, old.items, old.unlisted) == (
        "body",
        2,
        ("user",),
        None,
        0,
    )
    assert old.to_json()["items"] is None
    assert for_approvers(None, None) == []
    (new,) = for_approvers(context, {"body": [{"link": "a.io", "provenance": "x"}, "junk"]})
    assert new.items is not None
    assert [(x.shown.text, x.provenance) for x in new.items] == [("a.io", ())]
    assert new.unlisted == 1  # the count is what the policy saw; one is not listed


def test_a_long_message_lists_the_first_links_and_counts_the_rest() -> None:
    g = gate()
    session = Session("s-many")
    body = " ".join(f"host{i}.example" for i in range(MAX_LISTED + 5))
    listed = held_links(g, session, body)
    assert len(listed) == MAX_LISTED
    assert listed[0]["link"] == "host0.example"
