"""Progress on stderr: one redrawn line on a terminal, a periodic log line otherwise."""

from __future__ import annotations

import sys
import time
from typing import IO, Any


class Progress:
    """``[ 42/300] best test_acc=94.21 (#37) | running 2 | failed 1 | dup 5 | 3.1/s | ETA 1m30s``."""

    def __init__(self, stream: IO[str] | None = None, interval: float | None = None) -> None:
        self.stream = stream or sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.interval = interval if interval is not None else (0.2 if self.tty else 15.0)
        self.started = time.time()
        self.first_done: int | None = None
        self.last_draw = 0.0
        self.width = 0

    def update(self, done: int, budget: int, best: tuple[float, int] | None, metric: str, running: int,
               failed: int, duplicates: int, final: bool = False, **_: Any) -> None:
        """Redraw if the interval passed (always when ``final``)."""
        now = time.time()
        if self.first_done is None:
            self.first_done = done
        if not final and now - self.last_draw < self.interval:
            return
        self.last_draw = now
        line = self.format(done, budget, best, metric, running, failed, duplicates, now)
        if self.tty:
            self.stream.write("\r" + line.ljust(self.width))
            self.width = len(line)
            if final:
                self.stream.write("\n")
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def format(self, done: int, budget: int, best: tuple[float, int] | None, metric: str, running: int,
               failed: int, duplicates: int, now: float) -> str:
        """The status line."""
        width = len(str(budget))
        parts = [f"[{done:>{width}}/{budget}]"]
        if best is not None:
            parts.append(f"best {metric}={best[0]:.4g} (#{best[1]})")
        parts.append(f"running {running}")
        parts.append(f"failed {failed}")
        parts.append(f"dup {duplicates}")
        elapsed = now - self.started
        new = done - (self.first_done or 0)
        if new > 0 and elapsed > 0:
            rate = new / elapsed
            parts.append(f"{rate:.3g}/s" if rate >= 1 else f"{rate * 60:.3g}/min")
            parts.append("ETA " + _duration(max(0, budget - done) / rate))
        parts.append("elapsed " + _duration(elapsed))
        return " | ".join(parts)

    def close(self) -> None:
        """End the line on a terminal."""
        if self.tty and self.width:
            self.stream.write("\n")
            self.stream.flush()
            self.width = 0


def _duration(seconds: float) -> str:
    """``1h02m``, ``3m05s`` or ``12s``."""
    seconds = int(round(seconds))
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    if seconds >= 60:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds}s"
