"""The worker side of the zygote (tests/zygote.py): fork a child per "go", report how it ended.

Worker scripts run from tests/, so they import this by name.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import traceback
from collections.abc import Callable
from typing import Any


def reply(message: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def serve(child: Callable[[dict[str, Any], int], None]) -> None:
    """Answer "go" by forking `child(message, zygote_pid)` and "reap" by its end, until EOF."""
    zygote = os.getpid()
    while True:
        line = sys.stdin.readline()
        if not line:
            return
        msg = json.loads(line)
        if msg["cmd"] == "go":
            pid = os.fork()
            if pid == 0:
                try:
                    child(msg, zygote)
                    os._exit(3)  # not killed: the harness treats this as a failure
                except BaseException:
                    traceback.print_exc()
                    sys.stderr.flush()
                    os._exit(4)
            reply({"pid": pid})
        elif msg["cmd"] == "reap":
            _, status = os.waitpid(msg["pid"], 0)
            if os.WIFSIGNALED(status):
                reply({"signal": os.WTERMSIG(status)})
            else:
                reply({"exit": os.WEXITSTATUS(status)})
        else:
            return


def reporter(path: str | None, run: int, pause: list[Any] | None) -> Any:
    """The child's side: `mark(step, phase)` reports, and stops dead at the pause point."""
    fd = None if path is None else os.open(path, os.O_WRONLY)
    target = None if pause is None else (int(pause[0]), str(pause[1]))

    def mark(step: int, phase: str) -> None:
        if fd is None:
            return
        os.write(fd, f"{run} {step} {phase}\n".encode())
        if (step, phase) == target:
            os.write(fd, f"{run} paused\n".encode())
            while True:
                signal.pause()  # until the harness's SIGKILL

    return mark
