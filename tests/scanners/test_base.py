"""The walk over JSON-like values, redaction, the summary, plug-ins and the guarded imports."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest

from warded.scanners import Finding, Scanner, redact, scan_value, summary
from warded.scanners.base import mask_text


class WordScanner:
    """A plug-in: finds a fixed word, as any user-written scanner would."""

    def __init__(self, word: str, name: str = "words", kind: str = "word") -> None:
        self.word = word
        self.name = name
        self.kind = kind

    def scan(self, text: str) -> list[Finding]:
        out = []
        i = text.find(self.word)
        while i != -1:
            out.append(Finding(self.name, self.kind, "", i, i + len(self.word), 1.0))
            i = text.find(self.word, i + 1)
        return out


def test_a_plain_class_with_name_and_scan_is_a_scanner() -> None:
    assert isinstance(WordScanner("x"), Scanner)


def test_scan_value_sets_paths_for_nested_strings() -> None:
    value = {
        "subject": "hello bob",
        "items": [{"text": "bob again"}, 3, None, True],
        "a/b": ("~bob",),
        "n": 1.5,
    }
    found = scan_value([WordScanner("bob")], value)
    assert [(f.path, f.start, f.end) for f in found] == [
        ("subject", 6, 9),
        ("items/0/text", 0, 3),
        ("a~1b/0", 1, 4),
    ]


def test_a_bare_string_has_the_empty_path() -> None:
    assert [f.path for f in scan_value([WordScanner("x")], "axb")] == [""]


def test_findings_come_in_walk_then_scanner_order() -> None:
    found = scan_value([WordScanner("a", "one"), WordScanner("b", "two")], ["ab", "ba"])
    assert [(f.path, f.scanner) for f in found] == [
        ("0", "one"),
        ("0", "two"),
        ("1", "one"),
        ("1", "two"),
    ]


def test_redact_masks_spans_and_keeps_the_structure() -> None:
    value: dict[str, Any] = {
        "subject": "pay bob now",
        "items": [{"text": "bob"}, 7, False],
        "tuple": ("bob", "x"),
        "n": None,
    }
    found = scan_value([WordScanner("bob")], value)
    out = redact(value, found)
    assert out == {
        "subject": "pay [redacted:word] now",
        "items": [{"text": "[redacted:word]"}, 7, False],
        "tuple": ("[redacted:word]", "x"),
        "n": None,
    }
    assert value["subject"] == "pay bob now"  # the input is untouched


def test_overlapping_and_touching_spans_merge_into_one_mask() -> None:
    text = "0123456789"
    findings = [
        Finding("s", "b", "", 2, 5, 1.0),
        Finding("s", "a", "", 4, 7, 1.0),
        Finding("s", "a", "", 7, 8, 1.0),
    ]
    assert redact(text, findings) == "01[redacted:a+b]89"


def test_spans_are_clamped_so_no_tail_survives() -> None:
    assert redact("secret", [Finding("s", "k", "", 2, 99, 1.0)]) == "se[redacted:k]"


def test_the_mask_is_configurable() -> None:
    assert mask_text("a bob", [Finding("s", "word", "", 2, 5, 1.0)], "<{kind}>") == "a <word>"
    assert redact("a bob", [Finding("s", "word", "", 2, 5, 1.0)], "***") == "a ***"


def test_findings_for_other_paths_leave_a_string_alone() -> None:
    assert redact({"a": "bob"}, [Finding("s", "k", "b", 0, 3, 1.0)]) == {"a": "bob"}


def test_summary_always_has_the_three_builtin_keys() -> None:
    assert summary([]) == {"secrets": False, "pii": False, "injection": False}
    found = [Finding("pii", "email", "", 0, 1, 1.0), Finding("custom", "x", "", 0, 1, 1.0)]
    assert summary(found) == {"secrets": False, "pii": True, "injection": False}


def test_a_plugin_named_like_a_builtin_feeds_its_summary_key() -> None:
    found = scan_value([WordScanner("DROP TABLE", name="injection", kind="sql")], ["x DROP TABLE"])
    assert summary(found)["injection"] is True


def test_importing_the_package_loads_no_scanner_dependency() -> None:
    code = (
        "import sys, warded.scanners\n"
        "heavy = [m for m in sys.modules if m.split('.')[0] in "
        "('presidio_analyzer', 'detect_secrets', 'spacy', 'phonenumbers')]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize(
    ("module", "build"),
    [
        ("detect_secrets.core.plugins.util", "SecretsScanner"),
        ("presidio_analyzer.predefined_recognizers", "PiiScanner"),
    ],
)
def test_a_missing_extra_raises_an_import_error_naming_it(
    monkeypatch: pytest.MonkeyPatch, module: str, build: str
) -> None:
    import warded.scanners as scanners

    monkeypatch.setitem(sys.modules, module, None)
    with pytest.raises(ImportError, match=r"warded\[scan\]"):
        getattr(scanners, build)()
