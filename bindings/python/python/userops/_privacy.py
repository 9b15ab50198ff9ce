"""Privacy (SPEC §9): consent per channel and purpose, erasure, the audit log."""

from __future__ import annotations

import datetime as _dt
from typing import Any, Dict, List, Union

from . import _convert
from ._base import EngineBase

#: A time: an aware ``datetime`` or RFC 3339 text with a zone.
TimeLike = Union[_dt.datetime, str]


class PrivacyMethods(EngineBase):
    """Consent, erasure and audit methods of :class:`userops.Engine`."""

    def set_consent(
        self,
        user: _convert.UserLike,
        channel: str,
        purpose: str,
        granted: bool,
        *,
        actor: str,
        time: TimeLike,
    ) -> Dict[str, Any]:
        """Record that ``user`` gave (``granted=True``) or withdrew consent to be contacted on
        ``channel`` for ``purpose``. Audited under ``actor``. Returns the consent state. Raises
        ``NotFound`` for an unknown OneID.

        >>> import userops
        >>> e = userops.sample_engine()
        >>> e.set_consent(1, "sms", "marketing", True, actor="crm", time="2026-01-01T00:00:00Z")
        {'oneid': 1, 'channel': 'sms', 'purpose': 'marketing', 'granted': True, 'time': '2026-01-01T00:00:00Z'}
        """
        out: Dict[str, Any] = self.call(
            "set_consent",
            user=_convert.user(user),
            channel=channel,
            purpose=purpose,
            granted=granted,
            actor=actor,
            time=time,
        )
        return out

    def consent(self, user: _convert.UserLike, channel: str, purpose: str) -> bool:
        """Whether ``user`` consented to contact on ``channel`` for ``purpose`` (no record: no).

        >>> import userops
        >>> e = userops.sample_engine()
        >>> _ = e.set_consent(1, "sms", "marketing", True, actor="crm", time="2026-01-01T00:00:00Z")
        >>> e.consent(("member_no", "M1"), "sms", "marketing"), e.consent(1, "push", "marketing")
        (True, False)
        """
        out = self.call("consent", user=_convert.user(user), channel=channel, purpose=purpose)
        granted: bool = out["granted"]
        return granted

    def erase(self, oneid: int, *, actor: str, time: TimeLike) -> Dict[str, Any]:
        """Erase a person: identifiers and consent removed, the OneID kept as an empty
        tombstone; a durable engine also redacts the person's earlier journal records.
        Returns ``oneid``, ``identifiers_removed``, ``consents_removed``, ``already_erased``
        (erasing twice changes nothing more) and ``also_erased``: the persons erased with it,
        each founded by an identifier its events claimed that a cap kept apart, with no event
        or evidence of its own. Raises ``NotFound`` for an unknown OneID.

        >>> import userops
        >>> e = userops.sample_engine()
        >>> e.erase(3, actor="dpo", time="2026-03-01T00:00:00Z")
        {'oneid': 3, 'identifiers_removed': 2, 'consents_removed': 0, 'already_erased': False, 'also_erased': []}
        >>> e.resolve(("member_no", "M3")) is None
        True
        """
        out: Dict[str, Any] = self.call("erase", oneid=oneid, actor=actor, time=time)
        return out

    def audit_log(self) -> List[Dict[str, Any]]:
        """Every operator action (``seq``, ``actor``, ``action``, ``target``, ``time``), oldest
        first. There is no method to change it.

        >>> import userops
        >>> e = userops.sample_engine()
        >>> _ = e.erase(3, actor="dpo", time="2026-03-01T00:00:00Z")
        >>> e.audit_log()
        [{'seq': 1, 'actor': 'dpo', 'action': 'erase', 'target': 'oneid:3', 'time': '2026-03-01T00:00:00Z'}]
        """
        out: List[Dict[str, Any]] = self.call("audit_log")
        return out
