"""NATS: the credential is accepted, round-trips, has exactly the subject permissions it should,
is not expiring or over-age, belongs to the right account; JetStream and the server are healthy."""

from __future__ import annotations

import pytest

from opsverify.expect import Expect

pytestmark = [pytest.mark.smoke, pytest.mark.predeploy]


def _subjects(verdicts):
    return ", ".join(v.shown for v in verdicts)


# -- connecting ------------------------------------------------------------------------------------


@pytest.mark.runbook("nats#connect")
@pytest.mark.severity("critical")
def test_nats_accepts_credential(nats_connection, target, expect):
    expect.fact("server_version", nats_connection.server_version)
    expect.that(
        nats_connection.connected,
        expected=f"{nats_connection.identity} accepted by {nats_connection.where}",
        actual=nats_connection.auth_error or "not connected",
    )
    expect.record("connect time", nats_connection.connect_ms, unit="ms")


@pytest.mark.configured("request")
@pytest.mark.runbook("nats#round-trip")
def test_nats_service_replies_within_latency_budget(nats_request, target, expect):
    wanted = target.request.reply_contains
    expect.that(
        nats_request.ok,
        expected=f"a reply on {nats_request.subject}",
        actual=nats_request.problem or "no reply",
    )
    if wanted is not None:
        snippet = " ".join(nats_request.reply[:120].split())
        expect.that(
            wanted in nats_request.reply,
            expected=f"a reply containing {wanted!r}",
            actual=f"reply {snippet!r}",
        )
    expect.latency_at_most(nats_request.reading, target.max_round_trip_ms, what="request round trip")


@pytest.mark.mutating
@pytest.mark.configured("canary_subject")
@pytest.mark.runbook("nats#canary")
def test_nats_canary_message_round_trips_within_latency_budget(nats_canary, target, expect):
    expect.that(
        nats_canary.ok,
        expected=f"the canary published on {nats_canary.subject} to come back",
        actual=nats_canary.problem or "nothing received",
    )
    expect.latency_at_most(nats_canary.reading, target.max_round_trip_ms, what="canary round trip")


# -- permission matrix -----------------------------------------------------------------------------


@pytest.mark.mutating
@pytest.mark.configured("allow_publish")
@pytest.mark.runbook("nats#permissions")
@pytest.mark.severity("critical")
def test_credential_may_publish_to_allowed_subjects(nats_publish_permissions, target, expect):
    wrong = nats_publish_permissions.denied_among(target.allow_publish)
    expect.that(
        not wrong,
        expected=f"{nats_publish_permissions.identity} allowed to publish to {', '.join(target.allow_publish)}",
        actual=f"the server denied publish to {_subjects(wrong)}",
    )


@pytest.mark.mutating
@pytest.mark.configured("deny_publish")
@pytest.mark.runbook("nats#permissions")
@pytest.mark.severity("critical")
def test_credential_is_denied_publish_to_forbidden_subjects(nats_publish_permissions, target, expect):
    wrong = nats_publish_permissions.allowed_among(target.deny_publish)
    expect.that(
        not wrong,
        expected=f"{nats_publish_permissions.identity} denied publish to {', '.join(target.deny_publish)}",
        actual=f"the server accepted publish to {_subjects(wrong)} "
        f"(no permissions violation within {nats_publish_permissions.waited_s:.1f} s)",
    )


@pytest.mark.configured("allow_subscribe")
@pytest.mark.runbook("nats#permissions")
@pytest.mark.severity("critical")
def test_credential_may_subscribe_to_allowed_subjects(nats_subscribe_permissions, target, expect):
    wrong = nats_subscribe_permissions.denied_among(target.allow_subscribe)
    expect.that(
        not wrong,
        expected=f"{nats_subscribe_permissions.identity} allowed to subscribe to {', '.join(target.allow_subscribe)}",
        actual=f"the server denied subscribing to {_subjects(wrong)}",
    )


@pytest.mark.configured("deny_subscribe")
@pytest.mark.runbook("nats#permissions")
@pytest.mark.severity("critical")
def test_credential_is_denied_subscribe_to_forbidden_subjects(nats_subscribe_permissions, target, expect):
    wrong = nats_subscribe_permissions.allowed_among(target.deny_subscribe)
    expect.that(
        not wrong,
        expected=f"{nats_subscribe_permissions.identity} denied subscribing to {', '.join(target.deny_subscribe)}",
        actual=f"the server accepted subscriptions to {_subjects(wrong)} "
        f"(no permissions violation within {nats_subscribe_permissions.waited_s:.1f} s)",
    )


# -- the credential itself -------------------------------------------------------------------------


@pytest.mark.configured("creds")
@pytest.mark.runbook("nats#creds-expiry")
@pytest.mark.severity("critical")
def test_credential_is_not_close_to_expiry(nats_credential, target, expect):
    days_left = nats_credential.days_left()
    if days_left is None:
        expect.fact("expires", "never")
        return
    expect.fact("expires_at", nats_credential.expires_at.isoformat())
    expect.at_least(
        round(days_left, 2),
        target.credential_min_days,
        what=f"days until the JWT of {nats_credential.who} in {nats_credential.source} expires "
        f"({nats_credential.expires_at:%Y-%m-%d %H:%M} UTC)",
        unit="d",
    )


@pytest.mark.configured("creds")
@pytest.mark.runbook("nats#creds-age")
def test_credential_was_issued_within_max_age(nats_credential, target, expect):
    age = nats_credential.age_days()
    expect.that(
        age is not None,
        expected=f"an issue time (iat) in the JWT of {nats_credential.who}",
        actual="no iat claim, so its age is unknown",
    )
    expect.fact("issued_at", nats_credential.issued_at.isoformat())
    expect.at_most(
        round(age, 2),
        target.max_credential_age_days,
        what=f"age of the JWT of {nats_credential.who} in {nats_credential.source} "
        f"(issued {nats_credential.issued_at:%Y-%m-%d} UTC)",
        unit="d",
    )


@pytest.mark.configured("account")
@pytest.mark.runbook("nats#creds-account")
@pytest.mark.severity("critical")
def test_credential_belongs_to_expected_account(nats_account, target, expect):
    expect.that(
        nats_account.matches(target.account),
        expected=f"account {target.account}",
        actual=f"account {nats_account.shown} (from {nats_account.source})",
    )


# -- JetStream -------------------------------------------------------------------------------------


@pytest.mark.configured("jetstream")
@pytest.mark.runbook("nats#jetstream")
@pytest.mark.severity("critical")
def test_jetstream_is_enabled(nats_jetstream, target, expect):
    state = "enabled" if target.jetstream else "disabled"
    expect.that(
        nats_jetstream.enabled == target.jetstream,
        expected=f"JetStream {state} for this account",
        actual=nats_jetstream.disabled_reason or "JetStream enabled",
    )


def _jetstream_off(nats_jetstream):
    return f"JetStream is not usable ({nats_jetstream.disabled_reason})"


@pytest.mark.each("streams")
@pytest.mark.runbook("nats#streams")
def test_stream_exists_as_configured(nats_jetstream, target, target_item, expect):
    wanted = target_item
    seen = nats_jetstream.streams.get(wanted.name) if nats_jetstream.enabled else None
    problems = []
    if not nats_jetstream.enabled:
        problems.append(_jetstream_off(nats_jetstream))
    elif seen is None:
        problems.append(nats_jetstream.missing.get(wanted.name, f"stream {wanted.name} does not exist"))
    else:
        absent = [s for s in wanted.subjects if s not in seen.subjects]
        if absent:
            problems.append(f"subjects {', '.join(absent)} not captured (stream has {', '.join(seen.subjects) or 'none'})")
        if seen.replicas < wanted.min_replicas:
            problems.append(f"{seen.replicas} replica(s) (want at least {wanted.min_replicas})")
        if wanted.storage and seen.storage != wanted.storage:
            problems.append(f"{seen.storage} storage (want {wanted.storage})")
        expect.record(f"stream {wanted.name} messages", seen.messages)
    want = [f"subjects {', '.join(wanted.subjects)}"] if wanted.subjects else []
    want.append(f"replicas >= {wanted.min_replicas}")
    if wanted.storage:
        want.append(f"{wanted.storage} storage")
    expect.that(
        not problems,
        expected=f"stream {wanted.name} with {', '.join(want)}",
        actual="; ".join(problems),
    )


@pytest.mark.each("consumers")
@pytest.mark.runbook("nats#consumers")
def test_consumer_exists(nats_jetstream, target, target_item, expect):
    seen = nats_jetstream.consumers.get(target_item.name) if nats_jetstream.enabled else None
    expect.that(
        seen is not None,
        expected=f"consumer {target_item.consumer} on stream {target_item.stream}",
        actual=_jetstream_off(nats_jetstream) if not nats_jetstream.enabled
        else nats_jetstream.missing.get(target_item.name, "missing"),
    )


@pytest.mark.each("consumers")
@pytest.mark.runbook("nats#consumer-backlog")
def test_consumer_pending_within_limit(nats_jetstream, target, target_item, expect: Expect):
    seen = nats_jetstream.consumers.get(target_item.name) if nats_jetstream.enabled else None
    if seen is None:
        expect.fail(
            expected=f"consumer {target_item.name} to measure its pending messages",
            actual=_jetstream_off(nats_jetstream) if not nats_jetstream.enabled
            else nats_jetstream.missing.get(target_item.name, "missing"),
        )
    what = f"messages pending for consumer {target_item.name}"
    if target_item.max_pending is None:
        expect.record(what, seen.num_pending)
        return
    expect.at_most(seen.num_pending, target_item.max_pending, what=what)


@pytest.mark.each("consumers")
@pytest.mark.runbook("nats#consumer-backlog")
def test_consumer_ack_pending_within_limit(nats_jetstream, target, target_item, expect: Expect):
    seen = nats_jetstream.consumers.get(target_item.name) if nats_jetstream.enabled else None
    if seen is None:
        expect.fail(
            expected=f"consumer {target_item.name} to measure its unacknowledged messages",
            actual=_jetstream_off(nats_jetstream) if not nats_jetstream.enabled
            else nats_jetstream.missing.get(target_item.name, "missing"),
        )
    what = f"messages awaiting ack for consumer {target_item.name}"
    if target_item.max_ack_pending is None:
        expect.record(what, seen.num_ack_pending)
        return
    expect.at_most(seen.num_ack_pending, target_item.max_ack_pending, what=what)


@pytest.mark.trend
@pytest.mark.each("consumers")
@pytest.mark.runbook("nats#consumer-trend")
def test_consumer_keeps_up_over_the_window(nats_jetstream, trend_series, target, target_item, expect):
    """Judged over --samples like Burrow: ack floor stalled, backlog growing in every sample, or no ack too long."""
    seen = nats_jetstream.consumers.get(target_item.name) if nats_jetstream.enabled else None
    # a consumer missing in one sample is no observation; the existence check reports it
    observed = {} if seen is None else {target_item.name: (seen.ack_floor, seen.num_pending + seen.num_ack_pending)}
    trend_series.add(nats_jetstream, observed)
    trend_series.judge(expect, f"consumer {target_item.name}", "ack floor", max_age_s=target_item.max_ack_age_s,
                       moved_by="ack")


# -- server health ---------------------------------------------------------------------------------


@pytest.mark.configured("monitoring_url")
@pytest.mark.runbook("nats#server-health")
@pytest.mark.severity("critical")
def test_nats_server_reports_healthy(nats_monitoring, target, expect):
    expect.that(
        nats_monitoring.status == 200 and nats_monitoring.health == "ok",
        expected=f'HTTP 200 {{"status": "ok"}} from {nats_monitoring.url}',
        actual=f"HTTP {nats_monitoring.status} status={nats_monitoring.health!r}"
        + (f" error={nats_monitoring.error!r}" if nats_monitoring.error else ""),
    )


# -- credential rotation: the phase comes from --phase or the environment file's rotation: block -------
#
#   phase     previous (old) credential    configured (new) credential
#   before    accepted                     not checked yet
#   overlap   accepted                     accepted
#   after     rejected (revoked)           accepted
#   (none)    as after: a finished rotation leaves no old credential valid


def _phase_name(phase):
    return phase or "after (no rotation phase declared)"


@pytest.mark.rotation
@pytest.mark.configured("previous")
@pytest.mark.runbook("nats#rotation-overlap")
@pytest.mark.severity("critical")
def test_previous_credential_is_accepted_until_the_rollout_completes(nats_previous_connection, target, phase, expect):
    if phase not in ("before", "overlap"):
        pytest.skip(f"rotation phase {_phase_name(phase)}: the previous credential must be revoked "
                    "(test_previous_credential_is_rejected_after_the_rotation)")
    old = nats_previous_connection
    expect.that(
        old.connected,
        expected=f"the previous credential {old.identity} still accepted by {old.where} (rotation phase {phase})",
        actual=f"{old.auth_error}: services not yet rolled over to the new credential cannot connect",
    )


@pytest.mark.rotation
@pytest.mark.configured("previous")
@pytest.mark.runbook("nats#revoke-old-users")
@pytest.mark.severity("critical")
def test_previous_credential_is_rejected_after_the_rotation(nats_previous_connection, target, phase, expect):
    if phase in ("before", "overlap"):
        pytest.skip(f"rotation phase {phase}: the previous credential must still work "
                    "(test_previous_credential_is_accepted_until_the_rollout_completes)")
    old = nats_previous_connection
    expect.that(
        not old.connected,
        expected=f"the previous credential {old.identity} rejected by {old.where} (rotation phase {_phase_name(phase)})",
        actual="still accepted: the old user was not revoked",
    )


@pytest.mark.rotation
@pytest.mark.configured("previous")
@pytest.mark.runbook("nats#rotation-new")
@pytest.mark.severity("critical")
def test_new_credential_is_accepted_from_the_overlap_on(nats_connection, target, phase, expect):
    if phase == "before":
        pytest.skip("rotation phase before: the new credential need not work yet")
    new = nats_connection
    expect.that(
        new.connected,
        expected=f"the new credential {new.identity} accepted by {new.where} (rotation phase {_phase_name(phase)})",
        actual=f"{new.auth_error or 'not connected'}: the rollout would leave services unable to connect",
    )
