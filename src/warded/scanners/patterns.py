"""The injection heuristics' phrase patterns and their weights.

Patterns are written for folded text (see `normalize`): lowercase ASCII,
digits read as letters. They describe the *moves* an injection makes —
overriding earlier instructions, claiming a new role or mode, lifting
restrictions, faking conversation markup, addressing the model directly —
in general wording, not the phrasing of any particular corpus.
"""

from __future__ import annotations

import re

from warded.scanners import lexicon

# Signal kinds and weights. A text's score is the sum of the weights of the
# distinct kinds it shows, capped at 1.0 (docs/scanners.md explains the choice).
WEIGHTS: dict[str, float] = {
    "instruction_override": 0.6,
    "chat_template": 0.6,
    "hidden_text": 0.5,
    "prompt_leak": 0.4,
    "no_restrictions": 0.35,
    "mode_switch": 0.35,
    "new_instructions": 0.3,
    "role_marker": 0.3,
    "addressed_to_model": 0.3,
    "invisible_characters": 0.3,
    "role_play": 0.25,
    "refusal_suppression": 0.25,
    "mixed_script": 0.25,
    "encoded_payload": 0.2,
    "obfuscation": 0.2,
    "exfiltration": 0.25,
    # documents that give the agent orders (lexicon.py)
    "task_hijack": 0.45,
    "concealment": 0.35,
    "tool_reference": 0.3,
    "action_request": 0.25,
    "authority_claim": 0.2,
    "bulk_request": 0.25,
    "about_user": 0.3,
    # the session's own tools (InjectionScanner(tools=...))
    "tool_action": 0.35,
    "tool_name": 0.35,
    "output_dictation": 0.3,
    "context_break": 0.3,
    "task_marker": 0.25,
}

_VERB = (
    r"(?:ignore|ignoring|disregard|disregarding|forget|forgetting|override|overrule|bypass"
    r"|skip|drop|discard|abandon|neglect|set\W+aside|throw\W+(?:away|out)"
    r"|pay\W+no\W+(?:attention|heed)\W+to|(?:do\W*n[o']?t|never|stop|no\W+longer)\W+"
    r"(?:follow(?:ing)?|obey(?:ing)?|listen(?:ing)?\W+to|adher(?:e|ing)\W+to))"
)
_WHEN = (
    r"(?:previous|previously|prior|above|earlier|preceding|foregoing|former|original|initial"
    r"|old|existing|current|given|provided|system|developer|safety|default|all|any|every|your)"
)
_RULES = (
    r"(?:instructions?|instructed|directions?|directives?|prompts?|guidelines?|rules|commands?"
    r"|orders|programming|guardrails?|constraints?|restrictions?|policies|policy|training"
    r"|safeguards?|system\W+(?:prompt|message)|conditioning)"
)
_AI = r"(?:ai|assistant|llm|language\W+model|chat\W?bot|agent|model|gpt|chatgpt|claude|bot)"
_LIMITS = (
    r"(?:restrictions?|limits|limitations|rules|filters?|filtering|guidelines|censorship|censored"
    r"|morals?|morality|ethics|ethical\W+\w+|boundaries|constraints|polic(?:y|ies)|safeguards"
    r"|guardrails|moderation|programming|safety\W+\w+)"
)

PHRASES: dict[str, tuple[str, ...]] = {
    "instruction_override": (
        rf"\b{_VERB}\W+(?:\w+\W+){{0,2}}?{_WHEN}\W+(?:\w+\W+){{0,2}}?{_RULES}\b",
        rf"\b{_VERB}\W+(?:all\W+|any\W+)?(?:of\W+)?(?:the\W+|your\W+)?{_RULES}\W+(?:\w+\W+){{0,3}}?"
        r"(?:above|before|so\W+far|previously|earlier|you\W+(?:were|have\W+been)\W+given)\b",
        rf"\b{_VERB}\W+(?:all\W+(?:of\W+)?)?(?:the\W+)?(?:above|foregoing|preceding)"
        r"(?=\s*(?:[.,;:!\n]|and\b|then\b|instead\b|$))",
        r"\b(?:ignore|disregard|forget)\W+(?:about\W+)?(?:everything|anything|all)\W+"
        r"(?:(?:that\W+)?(?:you\W+(?:were|have\W+been|was)\W+(?:told|taught|given)|i\W+(?:said|told\W+you)"
        r"|above|before|prior|previous|so\W+far|else))",
        r"\b(?:forget|erase|reset|wipe)\W+(?:all\W+)?(?:of\W+)?your\W+(?:\w+\W+)?"
        r"(?:training|programming|instructions|rules|memory|guidelines)\b",
        # the document tells its reader to disregard the document: "ignore the rest of this
        # text", "disregard everything else in the document"
        rf"\b{_VERB}\W+(?:the\W+)?(?:rest|remainder|remaining\W+(?:\w+\W+)?|everything\W+else"
        r"|anything\W+else|all\W+(?:the\W+)?other\W+\w+)\W+(?:of\W+|in\W+)?(?:this|the)\W+"
        r"(?:text|document|data|content|context|input|page|article|email|e-mail|message|file"
        r"|passage|prompt|conversation|report|paragraph|section|story)\b",
        *lexicon.OVERRIDE,
    ),
    "task_hijack": lexicon.TASK_HIJACK,
    "output_dictation": (*lexicon.DICTATION, *lexicon.SAY_THAT),
    "concealment": lexicon.CONCEALMENT,
    "authority_claim": lexicon.AUTHORITY,
    "new_instructions": (
        r"\b(?:new|updated|revised|real|actual|true|additional|secret|hidden|override)\W+"
        r"(?:system\W+)?(?:instructions?|directives?|rules|task|orders|objective|prompt)\s*[:\-]",
        r"\byour\W+(?:new|real|actual|true|only|primary)\W+(?:task|goal|objective|purpose"
        r"|instructions?|role|job|mission|directive)\W+(?:is|are|will\W+be)\b",
        r"\bfrom\W+(?:now|this\W+(?:point|moment))\W+(?:on|onwards?|forward)\b",
        r"\b(?:henceforth|hereafter)\b",
        r"\binstead\W*,?\W+(?:you\W+(?:will|must|should)|do\W+the\W+following|follow\W+these)\b",
    ),
    "role_play": (
        r"\byou\W+are\W+(?:now|no\W+longer|going\W+to\W+(?:act|pretend|play|be))\b",
        r"\b(?:pretend|imagine|suppose)\W+(?:to\W+be|you\W+are|you'?re|that\W+you)\b",
        r"\bact(?:ing)?\W+(?:as|like)\W+(?:if|though|a|an|my)\b",
        r"\brole\W?play(?:ing)?\b|\bplay\W+the\W+(?:role|part)\W+of\b",
        r"\byou\W+(?:will|shall|must|should)\W+(?:now\W+)?(?:act|behave|respond|answer|speak)"
        r"\W+(?:as|like)\b",
        r"\b(?:simulate|emulate|impersonate|embody)\b",
        r"\b(?:fictional|hypothetical|imaginary)\W+(?:world|scenario|universe|story|setting)\b",
    ),
    "no_restrictions": (
        r"\b(?:no|without|free\W+(?:of|from)|not\W+(?:bound|restricted|limited|constrained)\W+by"
        r"|unbound\W+by|beyond|break(?:s|ing)?\W+free\W+(?:of|from)|escaped?\W+(?:from\W+)?"
        r"|(?:do\W*n[o']?t|does\W*n[o']?t|never)\W+(?:have|has|follow|obey|care\W+about|abide\W+by))"
        rf"\W+(?:any\W+)?(?:\w+\W+){{0,2}}?{_LIMITS}\b",
        r"\b(?:unfiltered|uncensored|unrestricted|unmoderated|unlimited\W+power|amoral|unethical)\b",
        r"\bjail\W?br(?:eak|oken|eaking)\w*",
        r"\b(?:can|could|will|able\W+to)\W+do\W+anything\b",
        r"\banything\W+goes\b",
    ),
    "mode_switch": (
        r"\b(?:developer|dev|god|jailbreak|jailbroken|dan|evil|chaos|unrestricted|unfiltered|sudo"
        r"|opposite|uncensored|unlocked)\W+mode\b",
        r"\bmode\W+(?:enabled|activated|unlocked)\b",
        r"\b(?:enable|activate|enter|switch\W+(?:to|into)|unlock)\W+(?:\w+\W+)?mode\b",
    ),
    "refusal_suppression": (
        r"\b(?:never|do\W*n[o']?t|must\W+not|can\W*n[o']?t|won'?t|will\W+not|should\W*n[o']?t"
        r"|are\W+not\W+allowed\W+to|not\W+allowed\W+to)\W+(?:ever\W+)?(?:refuse|decline|reject"
        r"|apologi[sz]e|say\W+(?:sorry|that\W+you\W+can\W*n?o?'?t)|warn"
        r"|(?:add|include|give|mention|provide)\W+(?:any\W+)?(?:warnings?|disclaimers?|caveats?))",
        r"\bwithout\W+(?:any\W+)?(?:warnings?|disclaimers?|caveats?|hesitation|question"
        r"|moral\w*|ethical\w*)\b",
        r"\b(?:stay|remain|keep)\W+in\W+character\b|\bbreak(?:ing)?\W+character\b",
    ),
    "prompt_leak": (
        r"\b(?:reveal|show|print|display|output|repeat|recite|leak|dump|tell\W+me|give\W+me"
        r"|write\W+(?:out|down)|share|spell\W+out|what\W+(?:is|are|was|were))\W+(?:me\W+)?"
        r"(?:\w+\W+){0,2}?(?:system\W+(?:prompt|message|instructions)|(?:initial|original|hidden"
        r"|secret|previous|above|developer)\W+(?:prompt|instructions|message)|instructions\W+"
        r"(?:above|you\W+were\W+given)|prompt\W+above|everything\W+above)",
        r"\b(?:repeat|print|output)\W+(?:the\W+)?(?:words|text|everything)\W+(?:above|before)\b",
    ),
    "addressed_to_model": (
        rf"\b(?:note|message|attention|instructions?|important|notice)\W+(?:to|for)\W+(?:the\W+|any\W+|all\W+)?{_AI}s?\b",
        rf"\bif\W+you\W+are\W+(?:an?\W+)?(?:\w+\W+)?{_AI}\b",
        rf"\b(?:dear|hey|hi|hello|attention|important|note)\W+{_AI}\b",
        rf"\b{_AI}s?\W+(?:reading|processing|summari[sz]ing)\W+(?:this|these)\b",
        *lexicon.ADDRESSED,
    ),
    "exfiltration": (
        r"\b(?:send|forward|e-?mail|upload|post|exfiltrate|transmit|leak|share)\W+(?:all\W+|the\W+"
        r"|this\W+|these\W+|your\W+|my\W+|their\W+|user'?s?\W+)*(?:\w+\W+)?(?:conversation"
        r"|chat\W+history|credentials?|passwords?|api\W+keys?|secrets?|tokens?|private\W+\w+"
        r"|contacts?|history|(?:security|verification|access|login|auth\w*|2fa|mfa|one\W?time"
        r"|recovery|reset)\W+(?:codes?|links?|pins?)|otps?)\b"
        rf"{lexicon.IN_SENTENCE}{{0,80}}?\b(?:to|with)\b",
        r"!\[[^\]\n]*\]\(https?://[^)\s]*[?&][^)\s]*=",
    ),
}

# Conversation markup of chat templates, and role labels at the start of a line.
MARKUP: dict[str, tuple[str, ...]] = {
    "chat_template": (
        r"<\|(?:im_start|im_end|im_sep|system|user|assistant|endoftext|eot_id|start_header_id"
        r"|end_header_id|begin_of_text|end_of_text)\|>",
        r"\[/?inst\]",
        r"<</?sys>>",
        r"<(?:start|end)_of_turn>",
    ),
    "context_break": lexicon.CONTEXT_BREAK,
    "role_marker": (
        r"(?:^|(?<=\n))[ \t>#*=\-\[(]*(?:system|developer|admin|administrator|operator|root)"
        r"(?:[ \t]+(?:message|prompt|note|instructions?|override|update|command))?[ \t]*[\]):>]",
        # a turn of a chat transcript in the data: a line labelled with the model's role
        r"(?:^|(?<=\n))[ \t>#*]*(?:assistant|ai|chatbot|bot|model|gpt)[ \t]*:[ \t]*\S",
        r"</?(?:system|sys|instructions?|admin)(?:[ \t][^>\n]*)?>",
        r"\b(?:begin|start|end)\W+(?:of\W+)?(?:the\W+)?(?:system|admin|developer)\W+"
        r"(?:prompt|message|instructions?)\b",
        # a role label in brackets anywhere: "(system_message)", "[SYSTEM NOTE]", "{admin}"
        r"[(\[{<][ \t]*(?:system|admin|administrator|developer|operator)(?:[ \t_\-]*(?:message"
        r"|prompt|note|notice|instructions?|override|update|command))?[ \t]*[)\]}>:]",
    ),
}

# Matched on the folded text without reading digits as letters (they need "@", digits, "_").
PLAIN: dict[str, tuple[str, ...]] = {
    "action_request": lexicon.ACTION,
    "tool_reference": lexicon.TOOL_REFERENCE,
    "bulk_request": lexicon.BULK,
    "about_user": lexicon.ABOUT_USER,
    "task_marker": lexicon.TASK_MARKER,
}

# Each kind's patterns are only searched near one of its trigger words (whole
# words of the folded text), from `before` characters ahead of the word to
# AFTER characters past it; every alternative above contains a trigger.
# for a kind searched everywhere: strings one of which every match contains, so a
# text with none of them is not searched (each alternative of its pattern needs one)
REQUIRES: dict[str, tuple[str, ...]] = {"chat_template": ("<|", "inst]", "sys>>", "_of_turn>")}
AFTER = 120
LONG_AFTER = {"exfiltration": 240}  # a gap of up to 80 characters, then "to" or "with"
TRIGGERS: dict[str, tuple[int, frozenset[str]]] = {
    kind: (before, frozenset(words.split()))
    for kind, before, words in (
        (
            "instruction_override",
            48,
            "ignore ignoring disregard disregarding forget forgetting override overrule bypass skip"
            " drop discard abandon neglect aside throw attention heed follow following obey"
            " obeying listen listening adhere adhering erase reset wipe "
            + lexicon.OVERRIDE_TRIGGERS,
        ),
        (
            "new_instructions",
            48,
            "instruction instructions directive directives rules task orders objective prompt goal"
            " purpose role job mission now point moment henceforth hereafter instead",
        ),
        (
            "role_play",
            48,
            "now longer going pretend imagine suppose act acting role roleplay roleplaying play"
            " part behave respond answer speak simulate emulate impersonate embody fictional"
            " hypothetical imaginary",
        ),
        (
            "no_restrictions",
            96,
            "restriction restrictions limits limitations rules filter filters filtering guidelines"
            " censorship censored moral morals morality ethics ethical boundaries constraints"
            " policy policies safeguards guardrails moderation programming safety unfiltered"
            " uncensored unrestricted unmoderated unlimited amoral unethical jail jailbreak"
            " jailbreaks jailbroken jailbreaking jailbreaker jailbreakers jailbreaked anything",
        ),
        ("mode_switch", 64, "mode"),
        (
            "refusal_suppression",
            64,
            "refuse decline reject apologize apologise say warn warning warnings disclaimer"
            " disclaimers caveat caveats without character refused refuses refusing declined"
            " declines declining rejected rejects rejecting apologized apologised apologizes"
            " apologises apologizing apologising warned warns",
        ),
        ("prompt_leak", 128, "prompt message instructions above repeat print output"),
        (
            "addressed_to_model",
            96,
            "ai ais assistant assistants llm llms language chatbot chatbots chat bot bots agent"
            " agents model models gpt chatgpt claude " + lexicon.ADDRESSED_TRIGGERS,
        ),
        (
            "exfiltration",
            256,
            "send forward email mail upload post exfiltrate transmit leak share http https",
        ),
        (
            "role_marker",
            48,
            "system developer admin administrator operator root sys instruction instructions"
            " assistant ai chatbot bot model gpt",
        ),
        ("task_hijack", 128, lexicon.TASK_HIJACK_TRIGGERS),
        (
            "output_dictation",
            96,
            lexicon.DICTATION_TRIGGERS + " " + lexicon.SAY_THAT_TRIGGERS,
        ),
        ("context_break", 48, lexicon.CONTEXT_BREAK_TRIGGERS),
        ("concealment", 64, lexicon.CONCEALMENT_TRIGGERS),
        ("authority_claim", 80, lexicon.AUTHORITY_TRIGGERS),
        ("tool_reference", 64, lexicon.TOOL_REFERENCE_TRIGGERS),
        ("bulk_request", 280, lexicon.BULK_TRIGGERS),
        ("about_user", 280, lexicon.ABOUT_USER_TRIGGERS),
        ("task_marker", 16, lexicon.TASK_MARKER_TRIGGERS),
    )
}

# Common trigger words that only count with a cue around them (checked on the
# 24 characters before and after the word): "follow" only when negated.
_NEGATED = r"(?:n[o']?t|never|stop|longer)\W+(?:\w+\W+)?$"
GUARDS: dict[str, re.Pattern[str]] = {
    **{
        word: re.compile(_NEGATED)
        for word in ("follow", "following", "obey", "obeying", "listen", "listening", "adhere")
    },
    "anything": re.compile(r"\bdo\W+$|^\W+goes\b"),
    # the last word of a to-do label only before its colon
    **{word: re.compile(r"^[ \t]*:") for word in lexicon.TASK_MARKER_TRIGGERS.split()},
    # a tool noun only after a verb that uses it: "use the tool", "with the following arguments"
    **{
        word: re.compile(
            r"\b(?:use|call|invoke|run|execute|trigger|following|with|utilise\w*|appelle\w*"
            r"|verwende|benutze|nutze|rufe|usa|utiliza|utilize|llama|chiama|gebruik|uzyj)"
            r"\W+(?:\w+\W+)?$"
        )
        for word in lexicon.TOOL_REFERENCE_TRIGGERS.split()
    },
}

# The guards whose every match ends the searched text with a non-word character, as their
# patterns end (`\W+$`, `\W+(?:\w+\W+)?$`; "$" before a last newline too): a text that ends
# with a word character has no match.
TAILED_GUARDS = frozenset(
    word for word, guard in GUARDS.items() if guard.pattern.endswith((r"\W+$", r"\W+(?:\w+\W+)?$"))
)

# Case matters for this one: "DAN" the persona, not "Dan" the name.
DAN = re.compile(r"\bDAN\b")
# Named encodings: rot13 is only decoded when the text mentions it.
ROT13_HINT = re.compile(r"\brot\W?13\b|\bcaesar\b|\brotate\W+(?:each|every|all)\W+letters?\b")


def compile_kinds(table: dict[str, tuple[str, ...]]) -> dict[str, re.Pattern[str]]:
    """One pattern per kind: its alternatives joined."""
    return {kind: re.compile("|".join(f"(?:{p})" for p in ps)) for kind, ps in table.items()}
