"""Safety classes decided from what a check will send, and the guard every send passes.

A check's class (README, "Safety classes") is the highest of

- its markers (``@pytest.mark.mutating`` / ``disruptive``): what the check's author declared;
- what each of its probes will send to *this* target (:class:`Sends`, declared with the probe:
  ``probe_fixture("http", sends=...)``): an HTTP method other than GET/HEAD/OPTIONS, a publish, a
  delivery or a produce is ``mutating``, a burst or a connection cap ``disruptive``;
- the target's own ``safety:`` key, which can only *raise* the class.

Only a probe's declared dry-run form lowers it: when every probe of a check sends in a dry-run form
for this target (a webhook receiver with ``dry_run: true`` only verifies), the markers do not count.

The class decides at collection whether a check is skipped; :func:`permit` is the second line, on
the wire: the HTTP request function and every publish, produce and burst ask it before sending,
so a probe whose declaration is wrong errors instead of sending to an environment that does not
allow it.

Example::

    sends=lambda target, item: of_method(target.method, target.url)
    permit(ctx, Safety.mutating, "a canary publish to orders.canary")   # in the probe, before sending
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from opsverify.config.base import Safety
from opsverify.errors import UnsafeSend

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
ORDER = {Safety.read_only: 0, Safety.mutating: 1, Safety.disruptive: 2}


@dataclass(frozen=True)
class Sends:
    """What a probe will send to one target: its class, in words, and whether it is a dry-run form."""

    safety: Safety
    what: str = ""
    dry_run: bool = False


SendsFn = Callable[[Any, Any], Sends]
"""``(target, item) -> Sends``: a probe's declaration, from the target's configuration."""


def reads(what: str = "") -> SendsFn:
    """A probe that only reads (connects, GETs, metadata)."""
    return lambda target, item: Sends(Safety.read_only, what)


def mutates(what: str) -> SendsFn:
    """A probe that always writes something (a publish, a produce, a delivery, an invocation)."""
    return lambda target, item: Sends(Safety.mutating, what)


def disrupts(what: str) -> SendsFn:
    """A probe that may degrade the system (a burst, connections up to a cap)."""
    return lambda target, item: Sends(Safety.disruptive, what)


def of_method(method: str, url: str = "") -> Sends:
    """An HTTP request's class: GET/HEAD/OPTIONS read, every other method mutates."""
    method = method.upper()
    shown = f"{method} {url}".strip()
    return Sends(Safety.read_only if method in SAFE_METHODS else Safety.mutating, shown)


def highest(classes: Iterable[Safety]) -> Safety:
    """The riskiest of ``classes`` (``read_only`` for none)."""
    return max(classes, key=ORDER.__getitem__, default=Safety.read_only)


@dataclass(frozen=True)
class Decision:
    """A check's class for one target, and why (``it sends POST …``, for the skip reason)."""

    safety: Safety
    because: str = ""

    def refusal(self, env: Any) -> str | None:
        """Why ``env`` does not allow this check (the skip reason), or ``None`` when it does."""
        if self.safety in env.allowed:
            return None
        allowed = ", ".join(s.value for s in env.allow or [])
        reason = f"{self.safety.value} checks are not allowed in {env.name} ({env.tier.value} tier allows: {allowed})"
        return reason + (f": {self.because}" if self.because else "")


def decide(marked: Safety, sends: list[Sends], declared: Safety | None) -> Decision:
    """The class of a check marked ``marked`` whose probes send ``sends`` to a target declaring
    ``declared`` (``safety:``, which only raises)."""
    dry_run = bool(sends) and all(s.dry_run for s in sends)
    probes = highest(s.safety for s in sends)
    safety = highest([probes] + ([] if dry_run else [marked]) + ([declared] if declared else []))
    sent = next((s.what for s in sends if s.safety == safety and s.what and safety != Safety.read_only), "")
    because = f"it sends {sent}" if sent else ""
    if not sent and declared == safety and safety != Safety.read_only and ORDER[safety] > ORDER[probes]:
        because = f"the target declares safety: {safety.value}"
    return Decision(safety, because)


def permit(ctx: Any, needed: Safety, what: str) -> None:
    """Raise :class:`UnsafeSend` unless the probe's environment allows ``needed`` for ``what``.

    Called right before anything that is not a read goes on the wire.
    """
    if needed == Safety.read_only:
        return
    env = ctx.env
    allowed = getattr(env, "allowed", None)
    if allowed is None or needed in allowed:
        return
    tier = getattr(getattr(env, "tier", None), "value", "?")
    shown = ", ".join(sorted(s.value for s in allowed)) or "nothing"
    raise UnsafeSend(
        f"opsverify refused to send {what} to {env.name}: it is {needed.value} and the environment "
        f"allows only {shown} ({tier} tier); nothing was sent — add {needed.value} to its allow: "
        f"list to let such checks run"
    )


def delivery_class(url: str, dry_run: bool) -> Sends:
    """A webhook delivery (a signed POST): ``mutating``, or ``read_only`` in its dry-run form, to a
    receiver that only verifies (``dry_run: true``)."""
    if dry_run:
        return Sends(Safety.read_only, f"a dry-run POST {url} (the receiver only verifies)", dry_run=True)
    return Sends(Safety.mutating, f"a signed delivery (POST {url})")
