"""Auth checks (runbook edge.md: secrets rotation, admin token revocation): JWT refresh and revocation,
admin endpoints, API keys, JWKS, and the rotation phases of API keys and signing keys."""

from __future__ import annotations

import pytest

REFUSED_ANONYMOUS = (401, 403)


# -- JWT flows ----------------------------------------------------------------------------------------
@pytest.mark.smoke
@pytest.mark.configured("refresh_path")
@pytest.mark.runbook("auth#refresh")
@pytest.mark.severity("critical")
def test_refresh_returns_a_new_valid_token(auth_refresh, target, expect):
    refreshed = auth_refresh
    if refreshed.token is not None and refreshed.token.kid:
        expect.fact("kid", refreshed.token.kid)
    how = "the shared secret" if target.jwt.symmetric else f"the JWKS at {target.jwks_path}"
    expect.that(refreshed.valid, expected=f"a new access token from {target.refresh_path} that verifies with {how}",
                actual=refreshed.problem)


@pytest.mark.smoke
@pytest.mark.mutating
@pytest.mark.configured("revoke")
@pytest.mark.runbook("auth#revoke")
@pytest.mark.severity("critical")
def test_revoked_token_is_rejected(auth_revocation, target, expect):
    answer = auth_revocation
    expect.that(
        answer.after == 401,
        expected=f"HTTP 401 from {target.me_path} for a token revoked through {target.revoke.path}",
        actual=f"HTTP {answer.after} ({answer.after_answer}) - the revoked token still works"
        if answer.after // 100 == 2 else f"HTTP {answer.after} ({answer.after_answer})",
    )


@pytest.mark.smoke
@pytest.mark.each("admin_paths")
@pytest.mark.runbook("auth#admin-closed")
@pytest.mark.severity("critical")
def test_admin_endpoint_rejects_anonymous_calls(auth_admin_anonymous, target, target_item, expect):
    answer = auth_admin_anonymous
    expect.that(answer.status in REFUSED_ANONYMOUS,
                expected=f"an anonymous {target_item.method} {target_item.path} refused with HTTP 401 or 403",
                actual=answer.shown)


# -- API keys and signing keys ----------------------------------------------------------------------------
@pytest.mark.smoke
@pytest.mark.configured("api_key")
@pytest.mark.runbook("auth#api-key-accepted")
def test_current_api_key_is_accepted(auth_api_key, target, expect):
    expect.that(auth_api_key.accepted,
                expected=f"the current API key ({target.api_key.key.label}) accepted by {target.api_key.path}",
                actual=auth_api_key.shown)


@pytest.mark.smoke
@pytest.mark.each("retired_api_keys")
@pytest.mark.runbook("auth#api-key-retired")
@pytest.mark.severity("critical")
def test_retired_api_key_is_rejected(auth_retired_api_key, target, target_item, expect):
    answer = auth_retired_api_key
    expect.that(answer.status in REFUSED_ANONYMOUS,
                expected=f"the retired API key {target_item.name} refused by {target.api_key.path} (HTTP 401/403)",
                actual=answer.shown + (" - the retired key still works" if answer.accepted else ""))


def _require_jwks(jwks, expect):
    __tracebackhide__ = True
    expect.that(not jwks.problem, expected=f"a JWKS document at {jwks.url}", actual=jwks.problem)


@pytest.mark.smoke
@pytest.mark.configured("jwks")
@pytest.mark.runbook("auth#jwks-kids")
def test_jwks_publishes_expected_kids(auth_jwks, target, expect):
    if not target.jwks.kids:
        pytest.skip("jwks.kids lists no expected key ids for this target")
    _require_jwks(auth_jwks, expect)
    missing = [kid for kid in target.jwks.kids if kid not in auth_jwks.kids]
    expect.fact("kids", auth_jwks.kids)
    expect.that(not missing, expected=f"kids {', '.join(target.jwks.kids)} published",
                actual=f"missing {', '.join(missing)} (published: {', '.join(auth_jwks.kids) or 'none'})")


@pytest.mark.smoke
@pytest.mark.configured("jwks")
@pytest.mark.runbook("auth#jwks-retired")
def test_jwks_does_not_publish_retired_kids(auth_jwks, target, expect):
    if not target.jwks.retired_kids:
        pytest.skip("jwks.retired_kids lists no retired key ids for this target")
    _require_jwks(auth_jwks, expect)
    still = [kid for kid in target.jwks.retired_kids if kid in auth_jwks.kids]
    expect.that(not still, expected=f"retired kids {', '.join(target.jwks.retired_kids)} not published",
                actual=f"{', '.join(still)} still published")


@pytest.mark.smoke
@pytest.mark.configured("jwks")
@pytest.mark.runbook("auth#jwks-public-only")
@pytest.mark.severity("blocker")
def test_jwks_publishes_public_keys_only(auth_jwks, target, expect):
    _require_jwks(auth_jwks, expect)
    exposed = auth_jwks.private_kids
    expect.that(not exposed, expected="only public key material in the JWKS",
                actual=f"private key material published for {', '.join(exposed)}")


# -- rotation phases ---------------------------------------------------------------------------------------
def _phase(phase, target, expect) -> str:
    """The phase to verify: ``--phase`` or the environment's ``rotation:`` (the ``phase`` fixture), else
    the target's own ``rotation.phase``, else ``after`` (a finished rotation)."""
    chosen = phase or target.rotation.phase or "after"
    expect.fact("rotation_phase", chosen)
    return chosen


@pytest.mark.smoke
@pytest.mark.rotation
@pytest.mark.configured("rotation")
@pytest.mark.runbook("auth#api-key-rotation")
def test_api_key_rotation_matches_phase(auth_api_key_rotation, target, phase, expect):
    if target.rotation.api_key is None:
        pytest.skip("the rotation declares no api_key")
    chosen = _phase(phase, target, expect)
    old, new = auth_api_key_rotation.old, auth_api_key_rotation.new
    want_old = {"before": True, "overlap": True, "after": False}[chosen]
    want_new = {"before": None, "overlap": True, "after": True}[chosen]  # None: not judged before the rotation
    wrong = []
    if old.accepted != want_old:
        wrong.append(f"old key {'refused' if not old.accepted else 'still accepted'} ({old.shown})")
    if want_new is not None and new.accepted != want_new:
        wrong.append(f"new key refused ({new.shown})")
    expected = {"before": "the old API key accepted",
                "overlap": "the old and the new API key both accepted",
                "after": "the new API key accepted and the old one refused"}[chosen]
    expect.that(not wrong, expected=f"{expected} (rotation phase {chosen})", actual="; ".join(wrong))


@pytest.mark.smoke
@pytest.mark.rotation
@pytest.mark.configured("rotation")
@pytest.mark.runbook("auth#signing-key-rotation")
def test_signing_key_rotation_matches_phase(auth_signing_key_rotation, target, phase, expect):
    if target.rotation.signing_key is None:
        pytest.skip("the rotation declares no signing_key")
    chosen = _phase(phase, target, expect)
    keys, seen = target.rotation.signing_key, auth_signing_key_rotation
    kids, issued = seen.jwks.kids, seen.issued_kid
    must = {"before": [keys.old_kid], "overlap": [keys.old_kid, keys.new_kid], "after": [keys.new_kid]}[chosen]
    must_not = [keys.old_kid] if chosen == "after" else []
    signs_with = {"before": keys.old_kid, "overlap": keys.new_kid, "after": keys.new_kid}[chosen]
    wrong = [f"{kid} not published" for kid in must if kid not in kids]
    wrong += [f"{kid} still published" for kid in must_not if kid in kids]
    if issued is not None and issued != signs_with:
        wrong.append(f"new tokens signed with {issued}")
    expected = {"before": f"the JWKS publishing {keys.old_kid}, new tokens signed with it",
                "overlap": f"the JWKS publishing {keys.old_kid} and {keys.new_kid}, new tokens signed with {keys.new_kid}",
                "after": f"the JWKS publishing {keys.new_kid} and not {keys.old_kid}, new tokens signed with {keys.new_kid}"}
    expect.fact("jwks_kids", kids)
    expect.that(not wrong, expected=f"{expected[chosen]} (rotation phase {chosen})",
                actual=f"{'; '.join(wrong)} (published: {', '.join(kids) or 'none'})")
