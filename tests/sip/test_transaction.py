"""The non-INVITE client transaction (RFC 3261 §17.1.2) driven by a fake clock.

Times are plain numbers passed in; expected schedules follow from the RFC's rules (Timer E starts
at T1, doubles up to T2; Timer F at 64·T1), computed here from the timer values rather than copied.
"""

from __future__ import annotations

import pytest

from sipphones.sip.config import TransactionTimers
from sipphones.sip.message import Headers, Request, Response
from sipphones.sip.parser import parse_message
from sipphones.sip.transaction import (
    FinalResponse,
    NonInviteClientTransaction,
    ProvisionalResponse,
    TimeoutCause,
    TransactionState,
    TransactionTimeout,
    Transmit,
)

BRANCH = "z9hG4bKtest0001"


def register(branch: str = BRANCH, method: str = "REGISTER") -> Request:
    h = Headers()
    h.add("Via", f"SIP/2.0/UDP 127.0.0.1:5070;rport;branch={branch}")
    h.add("Max-Forwards", "70")
    h.add("From", "<sip:alice@sip.test>;tag=abc")
    h.add("To", "<sip:alice@sip.test>")
    h.add("Call-ID", "call-1")
    h.add("CSeq", f"1 {method}")
    return Request(method, "sip:sip.test", h)


def answer(request: Request, status: int, *, branch: str | None = None, method: str | None = None,
           reason: str = "Reason") -> Response:
    """A response as the server sends it, through the wire (serialize + parse)."""
    h = Headers()
    via = request.headers.get("Via")
    if branch is not None:
        via = via.replace(BRANCH, branch)
    h.add("Via", via + ";received=127.0.0.1;rport=5070")
    h.add("From", request.headers.get("From"))
    h.add("To", request.headers.get("To") + ";tag=srv")
    h.add("Call-ID", request.headers.get("Call-ID"))
    cseq = request.headers.get("CSeq")
    if method is not None:
        cseq = cseq.split()[0] + " " + method
    h.add("CSeq", cseq)
    resp = parse_message(Response(status, reason, h).to_bytes())
    assert isinstance(resp, Response)
    return resp


def run_until(tx: NonInviteClientTransaction, end: float, limit: int = 1000) -> list[tuple[float, object]]:
    """Fire the transaction's timers at their deadlines up to ``end``; return (time, event)."""
    events = []
    for _ in range(limit):
        deadline = tx.next_deadline
        if deadline is None or deadline > end:
            return events
        events.extend((deadline, e) for e in tx.timer(deadline))
    raise AssertionError("timer loop did not settle")


def expected_udp_schedule(t: TransactionTimers, end: float) -> list[float]:
    """Transmission times per RFC 3261 §17.1.2.2 while in Trying, before ``end``."""
    times, at, interval = [0.0], t.t1, t.t1
    while at < end:
        times.append(at)
        interval = min(2 * interval, t.t2)
        at += interval
    return times


def test_udp_timer_e_doubles_up_to_t2_then_timer_f_times_out():
    timers = TransactionTimers()
    tx = NonInviteClientTransaction(register(), reliable=False, timers=timers)
    first = tx.start(0.0)
    assert first == [Transmit(tx.request, retransmission=False)]
    events = run_until(tx, 100.0)
    sends = [0.0] + [at for at, e in events if isinstance(e, Transmit)]
    assert all(e.retransmission for _, e in events if isinstance(e, Transmit))
    assert sends == pytest.approx(expected_udp_schedule(timers, timers.timer_f))
    gaps = [b - a for a, b in zip(sends, sends[1:])]
    assert gaps[0] == pytest.approx(timers.t1)
    assert max(gaps) == pytest.approx(timers.t2)      # capped at T2
    assert gaps[:4] == pytest.approx([0.5, 1.0, 2.0, 4.0])
    timeouts = [(at, e) for at, e in events if isinstance(e, TransactionTimeout)]
    assert len(timeouts) == 1
    at, timeout = timeouts[0]
    assert at == pytest.approx(64 * timers.t1) == pytest.approx(32.0)
    assert timeout.cause is TimeoutCause.TIMER_F
    assert tx.state is TransactionState.TERMINATED
    assert tx.next_deadline is None
    assert tx.transmissions == len(sends)


def test_custom_t1_t2_change_the_schedule():
    timers = TransactionTimers(t1=0.1, t2=0.4)
    tx = NonInviteClientTransaction(register(), reliable=False, timers=timers)
    tx.start(10.0)
    events = run_until(tx, 100.0)
    sends = [at - 10.0 for at, e in events if isinstance(e, Transmit)]
    assert sends[:4] == pytest.approx([0.1, 0.3, 0.7, 1.1])
    (at, timeout), = [(at, e) for at, e in events if isinstance(e, TransactionTimeout)]
    assert at == pytest.approx(10.0 + 6.4)


def test_tcp_never_retransmits_and_times_out_at_timer_f():
    tx = NonInviteClientTransaction(register(), reliable=True, timers=TransactionTimers())
    assert len(tx.start(0.0)) == 1
    assert tx.next_deadline == pytest.approx(32.0)
    events = run_until(tx, 100.0)
    assert [type(e) for _, e in events] == [TransactionTimeout]
    assert events[0][0] == pytest.approx(32.0)
    assert tx.transmissions == 1


def test_budget_ends_the_transaction_early():
    timers = TransactionTimers(budget=4.0)
    tx = NonInviteClientTransaction(register(), reliable=False, timers=timers)
    tx.start(0.0)
    events = run_until(tx, 100.0)
    sends = [at for at, e in events if isinstance(e, Transmit)]
    assert sends == pytest.approx([0.5, 1.5, 3.5])
    (at, timeout), = [(at, e) for at, e in events if isinstance(e, TransactionTimeout)]
    assert at == pytest.approx(4.0)
    assert timeout.cause is TimeoutCause.BUDGET
    assert timeout.elapsed == pytest.approx(4.0)


def test_budget_longer_than_timer_f_is_timer_f():
    tx = NonInviteClientTransaction(register(), reliable=True, timers=TransactionTimers(budget=100.0))
    tx.start(0.0)
    (at, timeout), = run_until(tx, 200.0)
    assert at == pytest.approx(32.0)
    assert timeout.cause is TimeoutCause.TIMER_F


def test_provisional_moves_to_proceeding_and_retransmits_every_t2():
    timers = TransactionTimers()
    tx = NonInviteClientTransaction(register(), reliable=False, timers=timers)
    tx.start(0.0)
    assert [type(e) for e in tx.timer(0.5)] == [Transmit]          # E: 0.5 -> next at 1.5
    out = tx.receive(answer(tx.request, 100, reason="Trying"), 0.7)
    assert [type(e) for e in out] == [ProvisionalResponse]
    assert tx.state is TransactionState.PROCEEDING
    assert tx.next_deadline == pytest.approx(1.5)                   # E keeps its schedule
    events = run_until(tx, 20.0)
    sends = [at for at, e in events if isinstance(e, Transmit)]
    assert sends[0] == pytest.approx(1.5)
    assert [b - a for a, b in zip(sends, sends[1:])] == pytest.approx([timers.t2] * (len(sends) - 1))
    # a provisional response does not stop Timer F
    rest = run_until(tx, 40.0)
    assert any(isinstance(e, TransactionTimeout) and at == pytest.approx(32.0) for at, e in rest)


def test_final_response_completes_and_timer_k_absorbs_retransmissions_over_udp():
    timers = TransactionTimers(t4=5.0)
    tx = NonInviteClientTransaction(register(), reliable=False, timers=timers)
    tx.start(100.0)
    tx.timer(100.5)
    final = answer(tx.request, 200, reason="OK")
    out = tx.receive(final, 100.8)
    assert len(out) == 1 and isinstance(out[0], FinalResponse)
    assert out[0].rtt == pytest.approx(0.8)
    assert tx.rtt == pytest.approx(0.8)
    assert tx.final_response is final
    assert tx.state is TransactionState.COMPLETED
    assert tx.next_deadline == pytest.approx(105.8)
    assert tx.receive(answer(tx.request, 200, reason="OK"), 101.0) == []   # absorbed
    assert tx.timer(105.0) == []                                        # no more retransmissions
    assert tx.state is TransactionState.COMPLETED
    assert tx.timer(105.8) == []
    assert tx.state is TransactionState.TERMINATED
    assert tx.next_deadline is None


def test_final_response_over_tcp_terminates_at_once():
    tx = NonInviteClientTransaction(register(), reliable=True, timers=TransactionTimers())
    tx.start(0.0)
    out = tx.receive(answer(tx.request, 401, reason="Unauthorized"), 0.05)
    assert isinstance(out[0], FinalResponse) and out[0].response.status == 401
    assert tx.state is TransactionState.TERMINATED
    assert tx.next_deadline is None


@pytest.mark.parametrize("branch,method,matches", [
    (None, None, True),
    ("z9hG4bKother", None, False),
    (None, "OPTIONS", False),
])
def test_response_matching_by_branch_and_cseq_method(branch, method, matches):
    tx = NonInviteClientTransaction(register(), reliable=False)
    tx.start(0.0)
    resp = answer(tx.request, 200, branch=branch, method=method)
    assert tx.matches(resp) is matches
    out = tx.receive(resp, 0.1)
    assert (len(out) == 1) is matches
    assert (tx.state is TransactionState.COMPLETED) is matches


def test_response_without_via_does_not_match():
    tx = NonInviteClientTransaction(register(), reliable=False)
    tx.start(0.0)
    resp = Response(200, "OK", Headers([("CSeq", "1 REGISTER")]))
    assert not tx.matches(resp)
    assert tx.receive(resp, 0.1) == []


def test_timer_f_wins_when_due_with_timer_e():
    timers = TransactionTimers(t1=0.5, t2=4.0)
    tx = NonInviteClientTransaction(register(), reliable=False, timers=timers)
    tx.start(0.0)
    out = tx.timer(1000.0)   # a very late wake-up: everything is overdue
    assert [type(e) for e in out] == [TransactionTimeout]
    assert tx.timeout.elapsed == pytest.approx(1000.0)


def test_late_timer_e_retransmits_once():
    tx = NonInviteClientTransaction(register(), reliable=False)
    tx.start(0.0)
    out = tx.timer(3.0)   # E was due at 0.5; one retransmission, next relative to now
    assert [type(e) for e in out] == [Transmit]
    assert tx.next_deadline == pytest.approx(4.0)


def test_early_timer_call_is_harmless():
    tx = NonInviteClientTransaction(register(), reliable=False)
    tx.start(0.0)
    assert tx.timer(0.1) == []
    assert tx.transmissions == 1


def test_transport_error_terminates():
    tx = NonInviteClientTransaction(register(), reliable=True)
    tx.start(0.0)
    tx.transport_error(0.01)
    assert tx.state is TransactionState.TERMINATED
    assert tx.next_deadline is None
    assert tx.receive(answer(tx.request, 200, reason="OK"), 0.02) == []
    assert tx.done


def test_needs_an_rfc3261_branch_and_a_non_invite_method():
    with pytest.raises(ValueError):
        NonInviteClientTransaction(register(branch="1234"), reliable=False)
    with pytest.raises(ValueError):
        NonInviteClientTransaction(register(method="INVITE"), reliable=False)


def test_start_twice_is_an_error():
    tx = NonInviteClientTransaction(register(), reliable=False)
    tx.start(0.0)
    with pytest.raises(RuntimeError):
        tx.start(1.0)


def test_responses_below_100_or_above_699_are_ignored():
    tx = NonInviteClientTransaction(register(), reliable=False)
    tx.start(0.0)
    resp = answer(tx.request, 200)
    resp.status = 99
    assert tx.receive(resp, 0.1) == []
    assert tx.state is TransactionState.TRYING


def test_timers_validate():
    from sipphones.sip.config import ConfigError
    with pytest.raises(ConfigError):
        TransactionTimers(t1=0)
    with pytest.raises(ConfigError):
        TransactionTimers(t1=2, t2=1)
    with pytest.raises(ConfigError):
        TransactionTimers(budget=0)
