"""The states the status listing accepts are every state the monitor writes, plus ``unknown``."""

from __future__ import annotations

from sipphones.api.openapi import PHONE_STATUS_SCHEMA
from sipphones.monitor.service import INVALID
from sipphones.phones.status import FAILED_STATES, STATES, UNKNOWN_STATE
from sipphones.sip.registration import RegistrationState


def test_states_are_the_monitors_and_unknown():
    assert set(STATES) == {s.value for s in RegistrationState} | {INVALID, UNKNOWN_STATE}
    assert len(STATES) == len(set(STATES))
    assert set(FAILED_STATES) == {RegistrationState.FAILED.value, INVALID}
    assert PHONE_STATUS_SCHEMA["properties"]["state"]["enum"] == list(STATES)


def test_the_cli_failed_filter_is_the_domains():
    from sipphones.cli import phones

    assert phones.FAILED_STATES == FAILED_STATES
