"""The zygote both kill -9 harnesses drive: a worker that forks children on request.

Kill points are chosen in steps, never in time, so a harness means the same on a
fast idle machine and a slow loaded one: a child reports its progress ("<run>
<step> <phase>" lines on a FIFO, `Progress`), and either stops dead at a pause
point it was given (the kill then lands exactly there) or runs on, to be killed
as soon as it reports a given step done (the kill lands wherever it is by then,
at least that far).

Tests import it by name: pytest puts tests/ on the path (`pythonpath` in pyproject.toml).
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

REPLY_BOUND = 10.0


class Zygote:
    """A worker process that forks children on request and reports how they ended."""

    def __init__(self, worker: Path, stderr: Path) -> None:
        self._stderr_path = stderr
        self._stderr = stderr.open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, str(worker)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            bufsize=0,
        )
        self.children: set[int] = set()

    def ask(self, **message: Any) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write((json.dumps(message) + "\n").encode())
        answer: dict[str, Any] = json.loads(self._readline())
        return answer

    def go(
        self,
        run: int,
        db: Path,
        effects: Path,
        mode: str = "loop",
        *,
        progress: Progress | None = None,
        pause: tuple[int, str] | None = None,
    ) -> int:
        """Fork a child; with `progress` it reports there, with `pause` it stops dead
        when it reaches that (step, phase)."""
        pid: int = self.ask(
            cmd="go",
            run=run,
            db=str(db),
            effects=str(effects),
            mode=mode,
            progress=None if progress is None else str(progress.path),
            pause=pause,
        )["pid"]
        self.children.add(pid)
        return pid

    def reap(self, pid: int) -> dict[str, int]:
        ended = self.ask(cmd="reap", pid=pid)
        self.children.discard(pid)
        return ended

    def stderr(self) -> str:
        self._stderr.flush()
        return self._stderr_path.read_text(errors="replace")

    def _readline(self) -> bytes:
        assert self.proc.stdout is not None
        out = self.proc.stdout.fileno()
        buf = b""
        deadline = time.monotonic() + REPLY_BOUND
        while not buf.endswith(b"\n"):
            ready, _, _ = select.select([out], [], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                pytest.fail(f"crash worker did not answer within {REPLY_BOUND}s\n{self.stderr()}")
            chunk = os.read(out, 4096)
            if not chunk:
                pytest.fail(f"crash worker exited\n{self.stderr()}")
            buf += chunk
        return buf

    def close(self) -> None:
        for pid in list(self.children):
            os.kill(pid, signal.SIGKILL)
            self.reap(pid)
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        try:
            self.proc.wait(timeout=REPLY_BOUND)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=REPLY_BOUND)
        assert self.proc.stdout is not None
        self.proc.stdout.close()
        self._stderr.close()


class Progress:
    """The FIFO children report their progress on, one "<run> <step> <phase>" line each."""

    def __init__(self, path: Path) -> None:
        self.path = path
        os.mkfifo(path)
        self._read = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        self._keep = os.open(path, os.O_WRONLY)  # a writer always exists: no EOF between children
        self._buf = b""

    def wait_for(self, line: str, bound: float = REPLY_BOUND * 3) -> None:
        """Read reports until `line` arrives; fail if it does not within `bound` seconds."""
        deadline = time.monotonic() + bound
        while True:
            while b"\n" in self._buf:
                got, self._buf = self._buf.split(b"\n", 1)
                if got.decode() == line:
                    return
            ready, _, _ = select.select([self._read], [], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                pytest.fail(f"no {line!r} report within {bound}s")
            self._buf += os.read(self._read, 65536)

    def close(self) -> None:
        os.close(self._read)
        os.close(self._keep)
