"""Progress of long work: a tqdm bar on the terminal and/or a callback (the dashboard's progress bar)."""

from __future__ import annotations

from typing import Callable

from tqdm.auto import tqdm

ProgressFn = Callable[[int, int, str], None]
"""on_progress(done, total, message)."""


class Progress:
    """Counts finished items towards ``total``; draws a bar when ``bar`` and calls ``on_progress`` when given."""

    def __init__(self, total: int, desc: str, unit: str = "subnet", bar: bool = True, on_progress: ProgressFn | None = None) -> None:
        self.total, self.done = int(total), 0
        self.on_progress = on_progress
        self._bar = tqdm(total=self.total, desc=desc, unit=unit, dynamic_ncols=True) if bar else None

    def tick(self, message: str) -> None:
        """One more item finished."""
        self.update(self.done + 1, self.total, message)

    def update(self, done: int, total: int, message: str) -> None:
        """``done`` of ``total`` items finished (a :data:`ProgressFn`, for code that reports its own counts)."""
        self.done, self.total = int(done), int(total)
        if self._bar is not None:
            self._bar.total = self.total
            self._bar.n = self.done
            self._bar.set_postfix_str(str(message)[:40], refresh=False)
            self._bar.refresh()
        if self.on_progress is not None:
            self.on_progress(self.done, self.total, message)

    def extend(self, more: int) -> None:
        """``more`` items of work found on the way; shown with the next tick."""
        self.total += int(more)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
