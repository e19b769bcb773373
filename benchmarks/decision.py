"""Decision latency: the plain-Python floor, raw cedarpy, warded's decision path, gate.call.

Everything is measured in one run, on the same synthetic bundle (20 agents in
4 teams, 50 tools in 5 action groups; see synthetic.py) and the same seeded
requests for every variant. Run from the repository root:

    .venv/bin/python benchmarks/decision.py            # full run (~2 minutes)
    .venv/bin/python benchmarks/decision.py --quick    # a fast smoke run

It prints the main table (100 policies), the scaling table (10 … 10,000
policies), a stage breakdown of `gate.decide`, and the result of checking that
every variant decided every request the same way as raw cedarpy.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import json
import math
import os
import platform
import pstats
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import cedarpy

sys.path.insert(0, str(Path(__file__).resolve().parent))

from synthetic import (
    AGENTS,
    GROUP_OF,
    TEAM_OF,
    TOOL_PARAMETERS,
    TOOLS,
    Floor,
    Request,
    Rule,
    generate_rules,
    make_requests,
    write_bundle,
)
from warded import (
    Decision,
    Gate,
    ManualClock,
    PolicyBundle,
    Principal,
    Refusal,
    Session,
    SessionState,
    SQLiteStore,
    Store,
)
from warded.canonical import canonical_json, thaw
from warded.policy.engine import Engine
from warded.policy.slicing import slice_tree
from warded.policy.values import to_cedar
from warded.request import build_context
from warded.tools import make_tool

SCALES: tuple[int, ...] = (10, 100, 1_000, 10_000)
MAIN_SCALE = 100
# 2026-01-01 (a Thursday) 14:00 UTC: time conditions see hour 14, weekday 4.
NOW = 1_767_225_600.0 + 14 * 3600
DONE = "done"
_ALLOW = cedarpy.Decision.Allow


def noop(**kwargs: Any) -> str:
    """The benchmark tool: does nothing."""
    return DONE


# -- variants -----------------------------------------------------------------


@dataclass(slots=True)
class Variant:
    key: str
    label: str
    fn: Callable[..., Any]
    calls: list[tuple[Any, ...]]  # one argument tuple per request
    allowed: Callable[[Any], bool]
    passes: int
    prepare: Callable[[], None] | None = None
    samples: list[int] = field(default_factory=list)
    decisions: list[bool] = field(default_factory=list)
    cpu_ns: int = 0  # this thread's CPU time over all measured passes

    def run_pass(self) -> None:
        fn, out, clock = self.fn, self.samples, time.perf_counter_ns
        cpu0 = time.thread_time_ns()
        for call in self.calls:
            t0 = clock()
            fn(*call)
            out.append(clock() - t0)
        self.cpu_ns += time.thread_time_ns() - cpu0

    def warm_up(self) -> None:
        if self.prepare is not None:
            self.prepare()
        self.decisions = [self.allowed(self.fn(*call)) for call in self.calls]

    @property
    def cpu_us(self) -> float:
        """Mean thread CPU µs per call (the wall-clock samples include time the CPU was taken)."""
        return self.cpu_ns / len(self.samples) / 1000

    @property
    def mean_us(self) -> float:
        return sum(self.samples) / len(self.samples) / 1000

    @property
    def median_us(self) -> float:
        return _percentile(self.samples, 50) / 1000

    @property
    def p99_us(self) -> float:
        return _percentile(self.samples, 99) / 1000

    @property
    def per_second(self) -> float:
        return len(self.samples) * 1e9 / sum(self.samples)


def _percentile(samples: Sequence[int], q: float) -> float:
    ordered = sorted(samples)
    k = max(0, min(len(ordered) - 1, math.ceil(q / 100 * len(ordered)) - 1))
    return float(ordered[k])


def _cedar_allowed(result: cedarpy.AuthzResult) -> bool:
    return result.decision == _ALLOW and not result.diagnostics.errors


def _gate_allowed(result: Decision | Refusal) -> bool:
    return isinstance(result, Decision) and result.allowed


def _call_allowed(result: Any) -> bool:
    return result is DONE


@dataclass(slots=True)
class Scale:
    """Everything one policy count needs: bundle, gates, requests, variants."""

    policies: int
    rules: list[Rule]
    bundle: PolicyBundle
    load_s: float
    requests: list[Request]
    variants: dict[str, Variant]
    slice_sizes: list[int]
    gate: Gate
    engine: Engine
    load: tuple[float, float, float]
    contexts: list[dict[str, Any]]
    audit_path: Path


def _gate(
    bundle: PolicyBundle, clock: ManualClock, store: Store | None, compiled: bool = True
) -> Gate:
    gate = Gate(bundle, clock=clock, store=store, compiled=compiled)
    for t in TOOLS:
        gate.register(t, TOOL_PARAMETERS, noop, resource=_resource_rule(t))
    return gate


def _resource_rule(tool: str) -> Callable[[Mapping[str, Any]], tuple[str, str]]:
    def rule(args: Mapping[str, Any]) -> tuple[str, str]:
        return ("Tool", tool)

    return rule


def _permittable_pairs(rules: Iterable[Rule]) -> list[tuple[str, str]]:
    """(agent, tool) pairs some permit's scope matches, in a fixed order."""
    pairs: set[tuple[str, str]] = set()
    for r in rules:
        if r.effect != "permit" or r.principal is None:
            continue
        kind, who = r.principal
        agents = [who] if kind == "Agent" else [a for a in AGENTS if TEAM_OF[a] == who]
        what, name = r.action
        tools = [name] if what == "tool" else [t for t in TOOLS if GROUP_OF[t] == name]
        pairs.update((a, t) for a in agents for t in tools)
    return sorted(pairs)


def _explicit_decimals(context: Mapping[str, Any]) -> dict[str, Any]:
    """The context with decimal strings in Cedar's explicit `__extn` form.

    With a schema, Cedar reads "12.5" as a decimal where the schema declares
    one; without a schema it stays a String, so the no-schema reference must
    spell decimals out.
    """
    props = TOOL_PARAMETERS["properties"]
    args = {
        k: {"__extn": {"fn": "decimal", "arg": v}} if props[k]["type"] == "number" else v
        for k, v in context["args"].items()
    }
    return {**context, "args": args}


def build_scale(n: int, root: Path, request_count: int, passes: int, seed: int) -> Scale:
    rules = generate_rules(n, seed)
    directory = write_bundle(root / f"bundle_{n}", rules)
    started = time.perf_counter()
    bundle = PolicyBundle.from_directory(directory)
    load_s = time.perf_counter() - started
    requests = make_requests(request_count, seed + 1, _permittable_pairs(rules))

    clock = ManualClock(NOW)
    floor = Floor(rules)
    decide_gate = _gate(bundle, clock, None)
    audit_path = root / f"audit_{n}.sqlite"
    call_gate = _gate(bundle, clock, SQLiteStore(audit_path))
    memory_gate = _gate(bundle, clock, None)
    cedar_gate = _gate(bundle, clock, None, compiled=False)  # the Cedar-only path
    engine = Engine(bundle)
    cedar_engine = Engine(bundle, compiled=False)
    hour = time.gmtime(NOW).tm_hour

    sessions: dict[frozenset[str], Session] = {}
    slices: dict[tuple[str, str], cedarpy.PolicySet] = {}
    slice_len: dict[tuple[str, str], int] = {}
    contexts: list[dict[str, Any]] = []
    raw: list[dict[str, Any]] = []
    raw_noschema: list[dict[str, Any]] = []
    for i, r in enumerate(requests):
        if r.labels not in sessions:
            sessions[r.labels] = Session(f"bench-{i}")
            for g in (decide_gate, cedar_gate, call_gate, memory_gate):
                if r.labels:
                    g.label(sessions[r.labels], sorted(r.labels))
        value = thaw(canonical_json(dict(r.args)))
        state = SessionState(sessions[r.labels].id, r.labels)
        context = build_context(to_cedar(value, TOOL_PARAMETERS), state, NOW)
        contexts.append(context)
        request = {
            "principal": {"type": "Agent", "id": r.agent},
            "action": {"type": "Action", "id": r.tool},
            "resource": {"type": "Tool", "id": r.tool},
            "context": context,
        }
        raw.append(request)
        raw_noschema.append({**request, "context": _explicit_decimals(context)})
        key = (r.agent, r.tool)
        if key not in slices:
            tree = slice_tree(bundle.tree, ("Agent", r.agent), ("Action", r.tool), bundle.ancestors)
            slices[key] = cedarpy.PolicySet.from_pst(tree)
            slice_len[key] = len(tree.static_policies)

    def principal(r: Request) -> Principal:
        return Principal.agent(r.agent)

    pairs = sorted({(r.agent, r.tool) for r in requests})

    def compile_slices(*engines: Engine) -> Callable[[], None]:
        """Compile (and self-check) every slice the requests use, before anything is timed."""

        def prepare() -> None:
            for e in engines:
                for agent, tool in pairs:
                    e.compiled(Principal.agent(agent), tool)

        return prepare

    full_passes = max(1, passes // max(1, n // 250))
    ps, ents, schema = bundle.policy_set, bundle.entities, bundle.schema
    variants = [
        Variant(
            "floor",
            "plain Python dict/set index (floor)",
            floor.decide,
            [(r.agent, r.tool, r.args, r.labels, hour) for r in requests],
            bool,
            passes,
        ),
        Variant(
            "cedar",
            "raw cedarpy, handles + schema",
            cedarpy.is_authorized,
            [(q, ps, ents, schema) for q in raw],
            _cedar_allowed,
            full_passes,
        ),
        Variant(
            "cedar_noschema",
            "raw cedarpy, handles, no schema",
            cedarpy.is_authorized,
            [(q, ps, ents, None) for q in raw_noschema],
            _cedar_allowed,
            full_passes,
        ),
        Variant(
            "cedar_slice",
            "raw cedarpy on warded's slice + schema",
            cedarpy.is_authorized,
            [
                (q, slices[(r.agent, r.tool)], ents, schema)
                for q, r in zip(raw, requests, strict=True)
            ],
            _cedar_allowed,
            passes,
        ),
        Variant(
            "engine",
            "warded Engine.decide (prebuilt context)",
            engine.decide,
            [
                (principal(r), r.tool, {"type": "Tool", "id": r.tool}, c)
                for r, c in zip(requests, contexts, strict=True)
            ],
            lambda d: bool(d.allowed),
            passes,
            compile_slices(engine),
        ),
        Variant(
            "engine_cedar",
            "warded Engine.decide, Cedar-only path",
            cedar_engine.decide,
            [
                (principal(r), r.tool, {"type": "Tool", "id": r.tool}, c)
                for r, c in zip(requests, contexts, strict=True)
            ],
            lambda d: bool(d.allowed),
            passes,
        ),
        Variant(
            "decide",
            "warded gate.decide (decision path)",
            decide_gate.decide,
            [(principal(r), r.tool, r.args, sessions[r.labels]) for r in requests],
            _gate_allowed,
            passes,
            compile_slices(decide_gate._engine),
        ),
        Variant(
            "decide_cedar",
            "warded gate.decide, Cedar-only path",
            cedar_gate.decide,
            [(principal(r), r.tool, r.args, sessions[r.labels]) for r in requests],
            _gate_allowed,
            passes,
        ),
        Variant(
            "call",
            "warded gate.call, no-op tool, SQLiteStore",
            call_gate.call,
            [(principal(r), r.tool, r.args, sessions[r.labels]) for r in requests],
            _call_allowed,
            passes,
            compile_slices(call_gate._engine),
        ),
        Variant(
            "call_mem",
            "warded gate.call, no-op tool, MemoryStore",
            memory_gate.call,
            [(principal(r), r.tool, r.args, sessions[r.labels]) for r in requests],
            _call_allowed,
            passes,
            compile_slices(memory_gate._engine),
        ),
    ]
    return Scale(
        policies=n,
        rules=rules,
        bundle=bundle,
        load_s=load_s,
        requests=requests,
        variants={v.key: v for v in variants},
        slice_sizes=[slice_len[(r.agent, r.tool)] for r in requests],
        gate=decide_gate,
        engine=engine,
        load=(0.0, 0.0, 0.0),
        contexts=contexts,
        audit_path=audit_path,
    )


def measure(scale: Scale) -> None:
    """Warm up every variant (recording its decisions), then measure in interleaved passes."""
    variants = list(scale.variants.values())
    for v in variants:
        v.warm_up()
    gc.collect()
    for k in range(max(v.passes for v in variants)):
        for v in variants:
            if k < v.passes:
                v.run_pass()
    scale.load = os.getloadavg()


# -- agreement ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Agreement:
    policies: int
    requests: int
    allowed: int
    hidden: int
    mismatches: Mapping[str, list[int]]


def check_agreement(scale: Scale) -> Agreement:
    reference = scale.variants["cedar"].decisions
    mismatches = {
        key: [i for i, (a, b) in enumerate(zip(v.decisions, reference, strict=True)) if a != b]
        for key, v in scale.variants.items()
        if key != "cedar"
    }
    hidden = sum(
        1 for r in scale.requests if not scale.engine.visible(Principal.agent(r.agent), r.tool)
    )
    return Agreement(scale.policies, len(reference), sum(reference), hidden, mismatches)


# -- stage breakdown of gate.decide --------------------------------------------


def breakdown(scale: Scale, passes: int) -> list[tuple[str, float]]:
    """Median µs of each step `gate.decide` takes, replayed step by step on the same requests.

    Mirrors the steps of gate.decide / Engine.decide up to the decision (not the
    obligations check that follows an allow); each step is timed separately, so
    the sum only approximates the whole.
    """
    tool = make_tool("bench", TOOL_PARAMETERS, noop, resource=lambda a: ("Tool", "x"))
    engine, bundle = scale.engine, scale.bundle
    clock = ManualClock(NOW)
    sessions = {r.labels: SessionState("s", r.labels) for r in scale.requests}
    slices = {
        (r.agent, r.tool): cedarpy.PolicySet.from_pst(
            slice_tree(bundle.tree, ("Agent", r.agent), ("Action", r.tool), bundle.ancestors)
        )
        for r in scale.requests
    }
    steps: dict[str, list[int]] = {}
    ns = time.perf_counter_ns
    ents, schema = bundle.entities._inner, bundle.schema

    def add(name: str, t0: int, t1: int) -> None:
        steps.setdefault(name, []).append(t1 - t0)

    built: list[tuple[Principal, Request, dict[str, Any]]] = []
    for _ in range(passes):  # the front end and the compiled path, as gate.decide runs them
        for r in scale.requests:
            p = Principal.agent(r.agent)
            t0 = ns()
            engine.visible(p, r.tool)
            t1 = ns()
            prepared = tool.prepare(r.args)
            t2 = ns()
            frozen = canonical_json(prepared)
            t3 = ns()
            value = thaw(frozen)
            t4 = ns()
            tool.check(value)
            t5 = ns()
            cedar_args = tool.to_cedar(value)
            t6 = ns()
            context = build_context(cedar_args, sessions[r.labels], clock.now())
            t7 = ns()
            compiled = engine.compiled(p, r.tool)
            t8 = ns()
            assert compiled is not None
            resource = compiled._resource({"type": "Tool", "id": r.tool})
            cedar_context = compiled._context(context)
            t9 = ns()
            permits, forbids = compiled._fn(resource, cedar_context)
            t10 = ns()
            Decision(
                not forbids and bool(permits), tuple(sorted(forbids or permits)), (), "", "enforce"
            )
            t11 = ns()
            built.append((p, r, context))
            add("tool lookup + visible() (cached)", t0, t1)
            add("tool.prepare (defaults)", t1, t2)
            add("canonical_json (orjson, rfc8785 fallback)", t2, t3)
            add("thaw (orjson)", t3, t4)
            add("tool.check (jsonschema_rs)", t4, t5)
            add("to_cedar (the tool's precompiled converter)", t5, t6)
            add("build_context", t6, t7)
            add("compiled: slice lookup", t7, t8)
            add("compiled: resource + context to Cedar values (generated)", t8, t9)
            add("compiled: evaluate the slice", t9, t10)
            add("compiled: Decision", t10, t11)
    for p, r, context in built:  # the Cedar path, on the same contexts (a loop of its own:
        t7 = ns()  # cedarpy's call evicts the caches the compiled path runs warm in)
        action = bundle.action_uid(r.tool)
        request: dict[str, Any] = {
            "principal": p.uid(),
            "action": action,
            "resource": {"type": "Tool", "id": r.tool},
            "context": context,
        }
        t8 = ns()
        policies = slices[(r.agent, r.tool)]
        t9 = ns()
        local = dict(request)
        local["context"] = json.dumps(context)
        t10 = ns()
        out = cedarpy._internal.is_authorized_batch([local], policies, ents, schema, False)
        t11 = ns()
        result = cedarpy.AuthzResult(json.loads(out[0]))
        t12 = ns()
        errors = tuple(result.diagnostics.errors)
        Decision(
            result.decision == _ALLOW and not errors,
            tuple(result.diagnostics.reasons),
            errors,
            engine.version,
            engine.mode,
        )
        t13 = ns()
        add("cedar: request dict + action_uid", t7, t8)
        add("cedar: slice lookup", t8, t9)
        add("cedar: wrapper json.dumps(context)", t9, t10)
        add("cedar: Rust call (schema, slice)", t10, t11)
        add("cedar: wrapper json.loads + AuthzResult", t11, t12)
        add("cedar: Decision from result", t12, t13)
    return [(name, _percentile(v, 50) / 1000) for name, v in steps.items()]


def profile(scale: Scale, calls: int) -> str:
    """cProfile of `gate.decide` over `calls` calls: the top functions by own time."""
    variant = scale.variants["decide"]
    profiler = cProfile.Profile()
    argsets = (variant.calls * (calls // len(variant.calls) + 1))[:calls]
    fn = variant.fn
    profiler.enable()
    for a in argsets:
        fn(*a)
    profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(25)
    return out.getvalue()


# -- output ---------------------------------------------------------------------


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], align: str) -> str:
    """A fixed-width text table; `align` has one 'l' or 'r' per column."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(
            c.ljust(w) if a == "l" else c.rjust(w)
            for c, w, a in zip(cells, widths, align, strict=True)
        ).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(headers), rule, *(line(r) for r in rows)])


def _us(x: float) -> str:
    if x >= 1000:
        return f"{x:,.0f}"
    if x >= 100:
        return f"{x:.0f}"
    if x >= 10:
        return f"{x:.1f}"
    return f"{x:.2f}"


def main_table(scale: Scale) -> str:
    ref = scale.variants["cedar"].median_us
    rows = [
        [
            v.label,
            _us(v.median_us),
            _us(v.p99_us),
            _us(v.mean_us),
            _us(v.cpu_us),
            f"{v.per_second:,.0f}",
            f"{v.median_us / ref:.2f}x",
            f"{len(v.samples):,}",
        ]
        for v in scale.variants.values()
    ]
    call = scale.variants["call"]
    allowed = call.decisions
    for want, label in (
        (True, "  of which allowed (decision + outcome records)"),
        (False, "  of which refused (decision record only)"),
    ):
        part = [x for j, x in enumerate(call.samples) if allowed[j % len(allowed)] is want]
        if part:
            med = _percentile(part, 50) / 1000
            rows.append(
                [
                    label,
                    _us(med),
                    _us(_percentile(part, 99) / 1000),
                    _us(sum(part) / len(part) / 1000),
                    "",
                    f"{len(part) * 1e9 / sum(part):,.0f}",
                    f"{med / ref:.2f}x",
                    f"{len(part):,}",
                ]
            )
    headers = [
        "variant",
        "median µs",
        "p99 µs",
        "mean µs",
        "CPU µs",
        "calls/s",
        "vs raw cedarpy",
        "n",
    ]
    return table(headers, rows, "lrrrrrrr")


SCALING_COLUMNS: tuple[tuple[str, str], ...] = (
    ("floor", "floor"),
    ("cedar", "cedarpy+schema"),
    ("cedar_slice", "cedarpy slice"),
    ("engine", "Engine.decide"),
    ("decide_cedar", "decide (Cedar only)"),
    ("decide", "gate.decide"),
    ("call", "gate.call"),
    ("call_mem", "call (mem)"),
)


def scaling_table(scales: Sequence[Scale]) -> str:
    rows = []
    for s in scales:
        v = s.variants
        rows.append(
            [
                f"{s.policies:,}",
                f"{s.load_s * 1000:,.0f}",
                f"{sum(s.slice_sizes) / len(s.slice_sizes):.1f}",
                *(_us(v[k].median_us) for k, _ in SCALING_COLUMNS),
                f"{v['decide'].median_us / v['cedar'].median_us:.2f}x",
                f"{v['call'].per_second:,.0f}",
                f"{s.load[0]:.2f}",
            ]
        )
    headers = [
        "policies",
        "load ms",
        "slice",
        *(h for _, h in SCALING_COLUMNS),
        "decide/cedar",
        "call/s",
        "load 1m",
    ]
    return table(headers, rows, "r" * len(headers))


GOALS = {100: (40.0, 0.25), 10_000: (50.0, None)}


def goals_table(scales: Sequence[Scale]) -> str:
    """Issue 13's goals for gate.decide, beside raw cedarpy and the Cedar-only path."""
    rows = []
    for s in scales:
        if s.policies not in GOALS:
            continue
        v = s.variants
        limit, ratio_goal = GOALS[s.policies]
        decide, cedar = v["decide"].median_us, v["cedar"].median_us
        ratio = decide / cedar
        met = decide <= limit and (ratio_goal is None or ratio <= ratio_goal)
        goal = f"<= {limit:.0f} µs" + (f", <= {ratio_goal}x cedarpy" if ratio_goal else "")
        rows.append(
            [
                f"{s.policies:,}",
                _us(decide),
                _us(v["decide"].cpu_us),
                _us(v["decide_cedar"].median_us),
                _us(cedar),
                f"{ratio:.3f}x",
                goal,
                "met" if met else "NOT MET",
            ]
        )
    headers = [
        "policies",
        "gate.decide µs",
        "CPU µs",
        "Cedar-only decide µs",
        "raw cedarpy µs",
        "decide/cedarpy",
        "goal",
        "",
    ]
    return "gate.decide against the goals (medians; CPU = mean thread CPU time)\n" + table(
        headers, rows, "rrrrrrll"
    )


def sqlite_commit_us(path: Path, commits: int = 300) -> float:
    """Median µs of one bare SQLite commit (WAL, synchronous=FULL, ~600-byte row): the disk's
    share of every audit append."""
    db = sqlite3.connect(path, isolation_level=None)
    try:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        db.execute("CREATE TABLE t (seq INTEGER PRIMARY KEY, body BLOB)")
        samples = []
        for _ in range(commits):
            t0 = time.perf_counter_ns()
            db.execute("BEGIN IMMEDIATE")
            db.execute("INSERT INTO t (body) VALUES (?)", (b"x" * 600,))
            db.execute("COMMIT")
            samples.append(time.perf_counter_ns() - t0)
    finally:
        db.close()
    return _percentile(samples, 50) / 1000


def revision() -> str:
    """The git commit of the checkout, and whether src/ has uncommitted changes."""
    root = Path(__file__).resolve().parent.parent
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "src"], cwd=root, capture_output=True, text=True
        ).stdout.strip()
    except OSError:
        return "unknown"
    return f"{head or 'unknown'}{' + uncommitted changes in src/' if dirty else ''}"


def machine() -> str:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (
        f"{os.cpu_count()} CPUs ({cpu}); Python {platform.python_version()}; "
        f"cedarpy {metadata.version('cedarpy')}; jsonschema {metadata.version('jsonschema')}; "
        f"{platform.system()} {platform.release()}"
    )


# -- main -----------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="few iterations, for a smoke run")
    ap.add_argument(
        "--iterations",
        type=int,
        default=None,
        help="measured calls per variant at <=100 policies (default 4000; --quick 400); "
        "full-set cedarpy gets fewer at 1,000 and 10,000 policies",
    )
    ap.add_argument("--requests", type=int, default=200, help="distinct requests (default 200)")
    ap.add_argument(
        "--scales",
        type=lambda s: tuple(int(x) for x in s.split(",")),
        default=None,
        help="comma-separated policy counts (default 10,100,1000,10000; --quick 10,100,1000)",
    )
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--profile", action="store_true", help="also print cProfile of gate.decide")
    return ap.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    opts = parse_args(argv)
    iterations = opts.iterations or (400 if opts.quick else 4000)
    passes = max(1, iterations // opts.requests)
    sizes: tuple[int, ...] = opts.scales or (SCALES[:3] if opts.quick else SCALES)
    started = time.perf_counter()
    print(f"machine: {machine()}")
    print(f"warded: {revision()}")
    print(
        f"bundle: 20 agents in 4 teams, 50 tools (40 in 5 action groups), "
        f"{opts.requests} seeded requests, seed {opts.seed}, {passes} pass(es) per variant"
    )
    scales: list[Scale] = []
    agreements: list[Agreement] = []
    breakdowns: dict[int, list[tuple[str, float]]] = {}
    profiles: dict[int, str] = {}
    with tempfile.TemporaryDirectory(prefix="warded-bench-") as tmp:
        commit_us = sqlite_commit_us(Path(tmp) / "fsync.sqlite")
        print(f"disk: one bare SQLite commit (WAL, synchronous=FULL) = {commit_us:.0f} µs median")
        print("load average at start: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
        for n in sizes:
            t0 = time.perf_counter()
            scale = build_scale(n, Path(tmp), opts.requests, passes, opts.seed)
            measure(scale)
            agreements.append(check_agreement(scale))
            if n in (100, 10_000) or n == sizes[-1]:
                breakdowns[n] = breakdown(scale, max(1, min(passes, 10)))
                if opts.profile:
                    profiles[n] = profile(scale, 5 * len(scale.requests))
            for v in scale.variants.values():
                v.calls = []  # drop references to the large handles
            scales.append(scale)
            print(
                f"  {n:>6,} policies: load {scale.load_s:.2f}s, "
                f"measured in {time.perf_counter() - t0:.1f}s",
                flush=True,
            )

    main_scale = next((s for s in scales if s.policies == MAIN_SCALE), scales[0])
    print()
    print(
        f"Decision latency, {main_scale.policies} policies, 50 tools, 20 agents "
        f"(per call; calls/s = 1 / mean, single thread)"
    )
    print(main_table(main_scale))
    print("load average after it: {:.2f} {:.2f} {:.2f}".format(*main_scale.load))
    print()
    print(goals_table(scales))
    print()
    print("Scaling: median µs per call (slice = mean policies in warded's slice per request)")
    print(scaling_table(scales))
    print()
    print(
        "gate.decide, step by step (median µs per step, replayed on the same requests; "
        "absolute values move with machine load, shares less)"
    )
    for n, steps in breakdowns.items():
        front = [(name, us) for name, us in steps if not name.startswith(("cedar:", "compiled:"))]
        rows = [[name, _us(us)] for name, us in steps]
        for path in ("cedar", "compiled"):
            total = sum(us for _, us in front) + sum(
                us for name, us in steps if name.startswith(path + ":")
            )
            rows.append([f"sum: front end + {path} steps", _us(total)])
        print(f"{n:,} policies:")
        print(table(["step", "median µs"], rows, "lr"))
    print()
    failed = False
    for a in agreements:
        bad = {k: v for k, v in a.mismatches.items() if v}
        status = "all variants agree" if not bad else f"DISAGREEMENTS: {bad}"
        failed = failed or bool(bad)
        print(
            f"decisions checked, {a.policies:,} policies: {a.requests} requests, "
            f"{a.allowed} allowed, {a.requests - a.allowed} denied "
            f"({a.hidden} on tools hidden from the agent); {status}"
        )
    for n, text in profiles.items():
        print(f"\ncProfile of gate.decide, {n:,} policies (top 25 by own time):\n{text}")
    print("load average at end: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
    print(f"total run time {time.perf_counter() - started:.0f}s")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
