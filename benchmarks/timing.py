"""One variant of a benchmark, timed call by call in interleaved passes.

Shared by the benchmarks that compare variants of one operation: each pass
adds wall-clock samples and the thread's CPU time, so load that comes and goes
hits every variant alike and the CPU column shows what the wall clock hides.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Timed:
    fn: Callable[[], Any]
    samples: list[int] = field(default_factory=list, kw_only=True)
    cpu_ns: int = field(default=0, kw_only=True)

    def run(self, calls: int) -> None:
        """One pass: `calls` calls of `fn`, each timed."""
        fn, out, clock = self.fn, self.samples, time.perf_counter_ns
        cpu0 = time.thread_time_ns()
        for _ in range(calls):
            start = clock()
            fn()
            out.append(clock() - start)
        self.cpu_ns += time.thread_time_ns() - cpu0

    @property
    def median_us(self) -> float:
        return statistics.median(self.samples) / 1000

    @property
    def p99_us(self) -> float:
        return statistics.quantiles(self.samples, n=100)[98] / 1000

    @property
    def cpu_us(self) -> float:
        """Mean thread CPU µs per call."""
        return self.cpu_ns / len(self.samples) / 1000
