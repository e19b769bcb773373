"""Scanners: findings about call arguments and tool results, for the policy to decide on.

Input scanners look at a call's arguments; their `summary` becomes the Cedar
context `context.scan`. Output scanners look at a tool's result; `redact`
masks what they found and a finding can label the session. A scanner is any
object with a `name` and `scan(text) -> list[Finding]` (the `Scanner`
protocol); the built-ins need the `scan` extra (`pip install 'warded[scan]'`)
except `InjectionScanner`, which is plain Python. See docs/scanners.md.
"""

from warded.scanners.base import Finding, Scanner, redact, scan_value, summary
from warded.scanners.injection import Assessment, InjectionScanner, Signal
from warded.scanners.pii import PiiScanner
from warded.scanners.secrets import SecretsScanner

__all__ = [
    "Assessment",
    "Finding",
    "InjectionScanner",
    "PiiScanner",
    "Scanner",
    "SecretsScanner",
    "Signal",
    "redact",
    "scan_value",
    "summary",
]
