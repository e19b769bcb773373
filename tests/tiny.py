"""Small policy bundles written inline, for tests that need one or two tools.

Every action gets the context warded provides (args, session, now); `scan` is
declared when asked for. Approver groups and approvers are entities, as
`@approval` needs them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from warded import BundleFiles, PolicyBundle

HEAD = (
    "type Session = { id: String, labels: Set<String>, calls: Long };\n"
    "type Now = { epoch: Long, hour: Long, weekday: Long };\n"
    "type Scan = { secrets: Bool };\n"
    "entity Team;\n"
    "entity Agent in [Team];\n"
    "entity Tool;\n"
    "entity ApproverGroup;\n"
    "entity Approver in [ApproverGroup];\n"
)
ENTITIES = [
    {"uid": {"type": "Team", "id": "ops"}, "attrs": {}, "parents": []},
    {
        "uid": {"type": "Agent", "id": "bot"},
        "attrs": {},
        "parents": [{"type": "Team", "id": "ops"}],
    },
    {"uid": {"type": "ApproverGroup", "id": "finance"}, "attrs": {}, "parents": []},
    {
        "uid": {"type": "Approver", "id": "alice"},
        "attrs": {},
        "parents": [{"type": "ApproverGroup", "id": "finance"}],
    },
]
ALLOW = '@id("all")\npermit (principal, action, resource);\n'


def tiny(actions: Mapping[str, str], policies: str, *, scan: bool = False) -> PolicyBundle:
    """A bundle with one action per entry (`name: Cedar record type of its args`)."""
    extra = ", scan: Scan" if scan else ""
    schema = HEAD + "".join(
        f"action {name} appliesTo {{ principal: [Agent], resource: [Tool],\n"
        f"  context: {{ args: {args}, session: Session, now: Now{extra} }} }};\n"
        for name, args in actions.items()
    )
    return PolicyBundle.load(
        BundleFiles(
            (("p.cedar", policies),),
            ("schema.cedarschema", schema),
            ("entities.json", json.dumps(ENTITIES)),
        )
    )
