"""Progress reporting for long work (table ingest, identity resolution, lifecycle stages, RFM).

Every long method takes ``progress=``:

* ``None`` (the default): a tqdm bar when tqdm is installed; tqdm hides it when stderr is not a
  terminal, so logs and notebooks run non-interactively stay clean;
* ``True``: always report (tqdm when installed, else a line on stderr per step);
* ``False``: never;
* a callable ``f(done, total)``: called after each step (a chunk of rows) with counts so far.

Native code runs without the GIL and takes it only to call the reporter between chunks (the
core reports through its ``Progress`` hook, which knows nothing of Python); Ctrl-C is checked
at the same points, so a long call stops within one chunk of the interrupt.

How a module uses it::

    with _progress.reporter(progress, total=n_rows, desc="ingest") as report:
        native_result = self._native.long_work(..., report)
"""

from __future__ import annotations

import importlib
import sys
from types import TracebackType
from typing import Any, Callable, Optional, Type

#: The callback native code receives: ``f(done, total)``.
Callback = Callable[[int, int], None]


class reporter:
    """Context manager turning a ``progress=`` argument into a callback (or ``None``) and closing
    any bar it opened.

    >>> seen = []
    >>> with reporter(lambda done, total: seen.append((done, total)), total=4) as report:
    ...     report(2, 4); report(4, 4)
    >>> seen
    [(2, 4), (4, 4)]
    >>> with reporter(False, total=4) as report:
    ...     report is None
    True
    """

    def __init__(self, progress: Any, *, total: int, desc: str = "userops", unit: str = "row") -> None:
        self._bar: Any = None
        self.callback: Optional[Callback] = None
        if progress is False:
            return
        if callable(progress):
            self.callback = progress
            return
        if progress is not None and progress is not True:
            from .errors import InvalidArgument

            raise InvalidArgument(
                "progress is None, True, False or a callable f(done, total)", field="progress"
            )
        try:
            tqdm = importlib.import_module("tqdm").tqdm
        except ImportError:
            if progress is True:
                self.callback = _stderr_line(desc)
            return
        # disable=None: tqdm shows the bar only on a terminal; True forces it.
        self._bar = tqdm(total=total, desc=desc, unit=unit, disable=None if progress is None else False)
        bar = self._bar

        def advance(done: int, total: int) -> None:
            if bar.total != total:  # the native side knows the exact amount of work
                bar.total = total
            bar.update(done - bar.n)

        self.callback = advance

    def __enter__(self) -> Optional[Callback]:
        return self.callback

    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        if self._bar is not None:
            self._bar.close()


def _stderr_line(desc: str) -> Callback:
    def report(done: int, total: int) -> None:
        sys.stderr.write(f"{desc}: {done}/{total}\n")

    return report
