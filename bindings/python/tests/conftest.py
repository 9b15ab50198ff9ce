"""Shared pytest fixtures."""

from __future__ import annotations

import signal
from typing import Iterator

import pytest


@pytest.fixture
def sigint_raises() -> Iterator[None]:
    """SIGINT raises KeyboardInterrupt during the test, whatever the runner inherited.

    A process started in the background by a non-interactive shell inherits SIGINT as
    ignored, and Python then installs no KeyboardInterrupt handler: a test that sends itself
    SIGINT would see nothing. The Ctrl-C tests install Python's default handler themselves.
    """
    old = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, old)
