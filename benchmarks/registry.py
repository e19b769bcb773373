"""Building the red-team replay's gates: make_tool's schema check kept, slices shared.

`warded redteam agentdojo` starts new gates for every job (`Defenses.renew`):
each registers the suite's tools (make_tool meta-validates every JSON Schema)
and lists them (partial evaluation over each (principal, action) slice). One
pass here is that: renew both policy arms of one suite and list their tools.
Four variants, interleaved pass by pass, each with the code it stands for:
`before` (every schema checked, every engine slicing on its own), `+cache`,
`+share` and `both` (what runs now). Run from the repository root:

    .venv/bin/python benchmarks/registry.py [--passes N] [--suite S]
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from timing import Timed
from warded import Session
from warded import tools as tools_module
from warded.evaluation.runner import runner_for
from warded.evaluation.suites import VERSIONS
from warded.policy import engine as engine_module


@contextmanager
def variant(cache: bool, share: bool) -> Iterator[None]:
    """The code as it was without the cache and/or the share, for the pass."""
    problem, shared = tools_module._schema_problem, engine_module.shared
    if not cache:  # as before: every schema meta-validated
        tools_module._schema_problem = tools_module._check_schema  # type: ignore[assignment]
    if not share:  # as before: a fresh set of slices per engine
        engine_module.shared = lambda bundle: engine_module.Shared()
    try:
        yield
    finally:
        tools_module._schema_problem, engine_module.shared = problem, shared


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--passes", type=int, default=15)
    parser.add_argument("--suite", default="workspace")
    options = parser.parse_args()
    print("load average at start: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
    runner = runner_for(VERSIONS[-1], options.suite)
    defenses = runner.defenses
    count = [0]

    def build(cache: bool, share: bool) -> Callable[[], None]:
        def one() -> None:
            with variant(cache, share):
                defenses.renew()
                for arm in defenses.arms.values():
                    count[0] += 1
                    arm.gate.tools(arm.principal, Session(f"s{count[0]}"))

        return one

    variants = {
        "before": Timed(build(False, False)),
        "+cache": Timed(build(True, False)),
        "+share": Timed(build(False, True)),
        "both": Timed(build(True, True)),
    }
    for timed in variants.values():  # warm: imports, the suite, the first bundle share
        timed.run(1)
        timed.samples.clear()
        timed.cpu_ns = 0
    for _ in range(options.passes):
        for timed in variants.values():
            timed.run(1)
    base = variants["before"]
    tools = len(defenses.functions)
    print(f"suite {options.suite} ({tools} tools, 2 gates a pass), {options.passes} passes")
    print(f"{'variant':8} {'median ms':>10} {'cpu ms':>8} {'wall ratio':>11} {'cpu ratio':>10}")
    for name, timed in variants.items():
        print(
            f"{name:8} {timed.median_us / 1000:10.1f} {timed.cpu_us / 1000:8.1f} "
            f"{timed.median_us / base.median_us:11.2f} {timed.cpu_us / base.cpu_us:10.2f}"
        )
    print("load average at end: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))


if __name__ == "__main__":
    main()
