"""The sample data: ``userops._sample`` (every docstring example starts from it)."""

from __future__ import annotations

from collections import Counter

from userops import _sample


def test_buyer_events_never_repeat_a_key_even_at_60000_buyers() -> None:
    # Keyed by the week to 0.001, 60 pairs of one buyer's orders would collide at this size,
    # and the sample engine refuse the second of each as a DuplicateKey.
    events = _sample.buyer_events(60_000)
    assert len(events) > 250_000
    repeated = [k for k, n in Counter(e["key"] for e in events).items() if n > 1]
    assert repeated == []
    assert len({e["order_id"] for e in events}) == len(events)
    # Still seeded: the same events every time.
    assert _sample.buyer_events(50) == _sample.buyer_events(50)
