"""SIP engine benchmark: digest registrations per second beside SIPp, and monitor capacity.

    .venv/bin/python bench/sip_engine.py --quick                 # about 3 minutes
    .venv/bin/python bench/sip_engine.py                         # about 12 minutes
    .venv/bin/python bench/sip_engine.py --baseline 5c88492      # plus the engine of that commit

One run starts one kamailio on 127.0.0.1 (the test registrar of tests/peers/kamailio.py: SQLite
HA1 users, ``min_expires`` 60, plus ``maxbuffer`` 4 MB: see :func:`bench_config`) with a range
of digest users for each SIPp scenario and one for the engine, then measures against it:

(a) **SIPp** as UAC, two scenarios, each at rising rates (``-buff_size 4194304``, bounded ``-m``
    and ``-timeout``); a scenario's ceiling is the best rate of a step where every call succeeded
    and under 1 % of messages were retransmitted:
    ``sipp-like-engine`` -- the engine's SIP work: REGISTER -> 401 -> REGISTER with digest -> 200
    with ``;rport`` in the Via (as the engine sends), every registration a new binding (a step
    registers min(rate x seconds, ``--fresh-users``) users that have no binding; after the step,
    not timed, a ``Contact: *``/``Expires: 0`` un-register removes them, as the engine's rounds
    end with un-REGISTERs; a sample of the users is looked up before, after, and after the
    un-register to check it). **Its ceiling is the one the target is measured against.**
    ``sipp-refresh`` -- the original scenario (``uac_register.xml`` of
    shared/reference/sip-test-peers.md §4.1, no ``;rport``, 10,000 users, one local port for
    every step, so after the first 10,000 calls every registration refreshes a binding), which
    costs kamailio less per registration; kept so the old figure stays comparable (bench/SIP.md,
    "Two SIPp ceilings").
(b) **The engine**: the same complete digest registrations with distinct users over UDP through
    ``RegistrationAgent`` (the monitor's code path), unpaced, in a worker process
    (bench/sip_worker.py); registrations per second of wall time and the worker's CPU. Then
    every phone is un-registered. The figure is engine rate / sipp-like-engine ceiling (target
    >= 0.5), printed beside engine rate / sipp-refresh ceiling (the figure of earlier runs).
(c) **Monitor capacity**: 10,000 phones with ``registration_expire_time`` = 1 minute (Expires
    60; refreshed at half the grant minus up to 10 % jitter, so ~330 refreshes/s) held for
    ``--hold`` seconds, by the real ``sipphones monitor`` command on a seeded SQLite store
    (bench/sip_monitor.py) and/or by ``RegistrationAgent`` alone in a worker; CPU share (utime +
    stime from /proc) and RSS sampled every 5 s. Targets: under 0.5 core and 300 MB.

Steps (a) (both ramps, in swapped order every round) and (b) alternate for ``--rounds`` rounds so
a busy machine slows all alike, and before each SIPp step and engine round the run waits (up to
10 s) for the machine to be idle (< 0.3 core busy): an overloaded SIPp step leaves kamailio
working through its backlog for a while after SIPp exits. CPU of
SIPp, the workers and kamailio comes from procfs / rusage of the finished children. Everything
runs on loopback; every process is stopped by PID at the end (also on Ctrl-C); every wait is
bounded. Writes bench/results/sip-<time>-<mode>.json and prints a summary; exits 1 when a check
failed (no clean SIPp step in a scenario, a sipp-like-engine un-register that left bindings, an
engine round that did not complete, a monitor that lost registrations). Method and figures: bench/SIP.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

if __package__ in (None, ""):
    # Run as a script: import from the repository root, and not from bench/ itself (its
    # profile.py would shadow the standard library's, which cProfile imports).
    _here = str(Path(__file__).resolve().parent)
    sys.path[:] = [p for p in sys.path if p not in ("", _here)]
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.procs import CLOCK_TICKS, pids_cpu_ticks, process_tree, tree_cpu_ticks, wait_for_quiet  # noqa: E402
from bench.sip_worker import password, user_name  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results"
DOMAIN = "sip.test"
PREFIX = "b"          # the engine's users: b000000, b000001, ...
SIPP_PREFIX = "s"     # SIPp's users of "sipp-refresh" (the original scenario)
FRESH_PREFIX = "n"    # SIPp's users of "sipp-like-engine" (each step registers them anew)
PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024

UAC_REGISTER = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<!-- REGISTER -> 401 -> REGISTER with digest -> 200 (shared/reference/sip-test-peers.md 4.1).
     -inf users.csv: field0 user, field1 password, field2 domain, field3 the [authentication] keyword. -->
<scenario name="register with digest auth">
  <send retrans="500" start_rtd="1">
    <![CDATA[
      REGISTER sip:[field2] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      Max-Forwards: 70
      From: <sip:[field0]@[field2]>;tag=[pid]SIPpTag[call_number]
      To: <sip:[field0]@[field2]>
      Call-ID: [call_id]
      CSeq: 1 REGISTER
      Contact: <sip:[field0]@[local_ip]:[local_port];transport=[transport]>
      Expires: 3600
      User-Agent: sipp-register-test
      Content-Length: 0

    ]]>
  </send>
  <recv response="401" auth="true" />
  <send retrans="500">
    <![CDATA[
      REGISTER sip:[field2] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      Max-Forwards: 70
      From: <sip:[field0]@[field2]>;tag=[pid]SIPpTag[call_number]
      To: <sip:[field0]@[field2]>
      Call-ID: [call_id]
      CSeq: 2 REGISTER
      Contact: <sip:[field0]@[local_ip]:[local_port];transport=[transport]>
      Expires: 3600
      [field3]
      User-Agent: sipp-register-test
      Content-Length: 0

    ]]>
  </send>
  <recv response="200" rtd="1" />
</scenario>
"""

def _edited(text: str, *edits: tuple[str, str]) -> str:
    """``text`` with each (old, new) replaced; every ``old`` must occur (a changed template fails
    here instead of yielding a scenario that silently differs)."""
    for old, new in edits:
        if old not in text:
            raise ValueError(f"scenario template lacks {old!r}")
        text = text.replace(old, new)
    return text


# The engine's SIP work done by SIPp ("sipp-like-engine"): the same scenario with ``;rport`` in
# the Via (RFC 3581, as the engine and most phones send: kamailio then adds ``received`` and
# ``rport`` to its responses). Its steps run on users without a binding (each step registers
# users 0..N-1 of its own range, which the previous step's un-register left without one), so
# every registration creates a binding, as the engine's rounds do.
UAC_REGISTER_RPORT = _edited(
    UAC_REGISTER,
    (";branch=[branch]", ";rport;branch=[branch]"),
    ('<scenario name="register with digest auth">',
     '<!-- like the engine: ;rport in the Via (RFC 3581); run on users without a binding -->\n'
     '<scenario name="register with digest auth, rport">'),
)

# After each "sipp-like-engine" step (not timed): the step's bindings removed, so kamailio's
# location table is as small during the next step and the engine's rounds as it is during the
# engine's, whose rounds end with un-REGISTERs too. ``Contact: *`` with ``Expires: 0`` (RFC 3261
# 10.2.2) removes every binding of the address of record, whichever port registered it (and is
# answered 200 for an address of record without one, e.g. after a failed registration).
UAC_UNREGISTER_ALL = _edited(
    UAC_REGISTER_RPORT,
    ('<!-- like the engine: ;rport in the Via (RFC 3581); run on users without a binding -->\n'
     '<scenario name="register with digest auth, rport">',
     '<!-- REGISTER Contact: * Expires: 0 -> 401 -> the same with digest -> 200: every binding removed. -->\n'
     '<scenario name="un-register all bindings with digest auth">'),
    ('<send retrans="500" start_rtd="1">', '<send retrans="500">'),
    ('<recv response="200" rtd="1" />', '<recv response="200" />'),
    ("Contact: <sip:[field0]@[local_ip]:[local_port];transport=[transport]>", "Contact: *"),
    ("Expires: 3600", "Expires: 0"),
)


# --- processes ---------------------------------------------------------------------------------


def proc_ticks(pid: int) -> int | None:
    """utime+stime (clock ticks) of one process, None when it is gone."""
    return pids_cpu_ticks([pid]).get(pid)


def proc_rss_mb(pid: int) -> tuple[float, float] | None:
    """(VmRSS, VmHWM) in MB of one process."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    vals = {}
    for line in text.splitlines():
        if line.startswith(("VmRSS:", "VmHWM:")):
            vals[line[:5]] = int(line.split()[1]) / 1024
    return vals.get("VmRSS", 0.0), vals.get("VmHWM", 0.0)


def tree_ticks(root: int) -> int:
    """utime+stime (clock ticks) of ``root`` and its descendants (kamailio forks its workers)."""
    return sum(tree_cpu_ticks(root).values())


def children_cpu() -> float:
    """CPU seconds of every finished, reaped child of this process (rusage)."""
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def stop_process(proc: subprocess.Popen, timeout: float = 10.0) -> None:
    """SIGTERM the child's process group by PID, then SIGKILL; always reaps."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(timeout)


# --- registrar ---------------------------------------------------------------------------------


def bench_config(workdir: Path) -> Path:
    """The test registrar's kamailio.cfg plus ``maxbuffer=4194304``: kamailio's UDP receive buffer
    as large as SIPp's ``-buff_size 4194304``. With the default (~512 KB here) kamailio itself
    drops datagrams under a few thousand registrations/s on a busy 2-CPU machine (seen as
    RcvbufErrors and thousands of retransmissions in SIPp's counters), which measures the
    registrar's socket, not the clients."""
    import tests.peers.kamailio as kamailio_peer

    text = kamailio_peer.CONFIG.read_text()
    marker = "children=2\n"
    if marker not in text:
        raise RuntimeError("tests/peers/kamailio.cfg changed: no 'children=2' line to anchor maxbuffer")
    path = workdir / "kamailio-bench.cfg"
    path.write_text(text.replace(marker, marker + "maxbuffer=4194304\n", 1))
    return path


def start_registrar(workdir: Path, sipp_users: int, engine_users: int,
                    extra_users: list[tuple[str, str]] = (), fresh_users: int = 0, **start_options):
    """kamailio on 127.0.0.1 (tests/peers/kamailio.py) with ranges of digest users: SIPp's
    (prefix ``s``, refreshed by "sipp-refresh"), SIPp's ``fresh_users`` (prefix ``n``, registered
    anew and un-registered by every "sipp-like-engine" step) and the engine's (prefix ``b``), so
    each side's 200 OK lists only its own bindings of an address of record."""
    import tests.peers.kamailio as kamailio_peer
    from tests.peers.pki import TestCA

    cert = TestCA(workdir / "pki", "sipbench CA").issue("registrar", ["127.0.0.1", DOMAIN])
    accounts = [kamailio_peer.SipUser(user_name(SIPP_PREFIX, i), password(SIPP_PREFIX, i), DOMAIN)
                for i in range(sipp_users)]
    accounts += [kamailio_peer.SipUser(user_name(FRESH_PREFIX, i), password(FRESH_PREFIX, i), DOMAIN)
                 for i in range(fresh_users)]
    accounts += [kamailio_peer.SipUser(user_name(PREFIX, i), password(PREFIX, i), DOMAIN)
                 for i in range(engine_users)]
    accounts += [kamailio_peer.SipUser(name, secret, DOMAIN) for name, secret in extra_users]
    kamailio_peer.CONFIG = bench_config(workdir)   # this process only: start_kamailio reads it
    return kamailio_peer.start_kamailio(workdir / "kamailio", address="127.0.0.1", domain=DOMAIN,
                                        users=accounts, cert=cert, min_expires=60, **start_options)


# --- SIPp ----------------------------------------------------------------------------------------


@dataclass
class SippStep:
    target: int
    calls: int
    successful: int
    failed: int
    retransmissions: int
    elapsed: float
    cpu_seconds: float
    exit_code: int
    wall: float = 0.0

    @property
    def rate(self) -> float:
        return self.successful / self.elapsed if self.elapsed > 0 else 0.0

    @property
    def clean(self) -> bool:
        """Sustained: every call succeeded and under 1 % of the messages needed a retransmission."""
        return self.failed == 0 and self.successful == self.calls and self.retransmissions <= 0.01 * self.calls

    def as_dict(self) -> dict:
        return {"target": self.target, "calls": self.calls, "successful": self.successful,
                "failed": self.failed, "retransmissions": self.retransmissions,
                "seconds": round(self.elapsed, 3), "rate": round(self.rate, 1),
                "seconds_wall": round(self.wall, 3),
                "rate_wall": round(self.successful / self.wall, 1) if self.wall > 0 else 0.0,
                "cpu_seconds": round(self.cpu_seconds, 3),
                "cpu_us_per_registration": round(1e6 * self.cpu_seconds / self.successful, 1) if self.successful else None,
                "clean": self.clean, "exit_code": self.exit_code}


@dataclass
class SippScenario:
    """One SIPp registration scenario of the ramps.

    ``sipp-refresh``: the original scenario (no ``;rport``) on 10,000 users from one local port:
    after the first 10,000 calls of a run every registration refreshes an existing binding.
    ``sipp-like-engine``: the engine's SIP work, ``;rport`` in the Via and every registration a
    new binding: a step registers users 0..N-1 of its own range (N at most ``users``), and
    after the step (not timed) ``unregister`` removes their bindings, so the next step's users
    have none and kamailio's location table is back to what it held before the step."""

    kind: str
    scenario: Path
    csv: Path
    users: int
    port: int
    prefix: str
    unregister: Path | None = None

    def calls(self, rate: int, seconds: float) -> int:
        calls = max(1, int(rate * seconds))
        return min(calls, self.users) if self.unregister is not None else calls


def users_csv(path: Path, prefix: str, users: int) -> Path:
    """SIPp's -inf file: field0 user, field1 password, field2 domain, field3 the [authentication] keyword."""
    lines = ["SEQUENTIAL"]
    for i in range(users):
        u, p = user_name(prefix, i), password(prefix, i)
        lines.append(f"{u};{p};{DOMAIN};[authentication username={u} password={p}]")
    path.write_text("\n".join(lines) + "\n")
    return path


def write_sipp_files(workdir: Path, users: int) -> tuple[Path, Path]:
    """The original scenario ("sipp-refresh") and its users."""
    scenario = workdir / "uac_register.xml"
    scenario.write_text(UAC_REGISTER)
    return scenario, users_csv(workdir / "users.csv", SIPP_PREFIX, users)


def like_engine_scenario(workdir: Path, users: int, port: int) -> SippScenario:
    """"sipp-like-engine": ``;rport``, new bindings, un-registered after each step."""
    scenario = workdir / "uac_register_rport.xml"
    scenario.write_text(UAC_REGISTER_RPORT)
    unregister = workdir / "uac_unregister_all.xml"
    unregister.write_text(UAC_UNREGISTER_ALL)
    return SippScenario("sipp-like-engine", scenario, users_csv(workdir / "fresh-users.csv", FRESH_PREFIX, users),
                        users, port, FRESH_PREFIX, unregister)


def _stat_row(path: Path) -> dict[str, str]:
    rows = [line.split(";") for line in path.read_text(errors="replace").splitlines() if line.strip()]
    if len(rows) < 2:
        return {}
    return dict(zip(rows[0], rows[-1]))


def _stat_epoch(value: str) -> float | None:
    """SIPp's stat time "2026-11-28<TAB>00:55:37.823143<TAB>1795827337.823143": its epoch part."""
    try:
        return float(value.split("\t")[-1])
    except (ValueError, AttributeError):
        return None


def run_sipp(workdir: Path, kam, scenario: Path, csv: Path, rate: int, seconds: float, step: int,
             port: int, calls: int | None = None, label: str = "sipp") -> SippStep:
    calls = calls or max(1, int(rate * seconds))
    seconds = calls / rate
    stat = workdir / f"{label}-{step}-{rate}.csv"
    bound = seconds * 3 + 15          # a saturated SIPp needs longer than rate*seconds; never forever
    argv = ["sipp", f"127.0.0.1:{kam.udp_port}", "-sf", str(scenario), "-inf", str(csv),
            "-i", "127.0.0.1", "-p", str(port), "-t", "u1", "-r", str(rate), "-m", str(calls),
            "-buff_size", "4194304", "-auth_uri", DOMAIN, "-nostdin", "-nd",
            "-timeout", f"{int(bound)}s", "-trace_stat", "-stf", str(stat), "-fd", "1"]
    cpu0 = children_cpu()
    with open(workdir / f"{label}-{step}-{rate}.screen.log", "wb") as out:
        t0 = time.monotonic()
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                cwd=workdir, start_new_session=True)
        try:
            code = proc.wait(bound + 10)
        except subprocess.TimeoutExpired:
            stop_process(proc)
            code = -1
        finally:
            stop_process(proc)
        wall = time.monotonic() - t0
    cpu = children_cpu() - cpu0
    row = _stat_row(stat) if stat.exists() else {}

    def num(name: str) -> int:
        try:
            return int(row.get(f"{name}(C)", "0"))
        except ValueError:
            return 0

    # The step's time is SIPp's own clock: from its start (the first call leaves at once) to its
    # last statistics line, written when the last call ended (StartTime and CurrentTime carry
    # microseconds; its ElapsedTime has whole seconds only). The process's wall time adds its
    # start-up and exit (~20-40 ms), which matters for the short steps of "sipp-like-engine"; it
    # is kept as ``seconds_wall`` / ``rate_wall`` (the rate of runs before 2026-11-28 01:00 UTC).
    start, end = _stat_epoch(row.get("StartTime", "")), _stat_epoch(row.get("CurrentTime", ""))
    # (exit code 0: every call succeeded, 1: some failed; anything else: SIPp did not end normally)
    elapsed = end - start if start is not None and end is not None and end > start and code in (0, 1) else wall
    return SippStep(target=rate, calls=calls, successful=num("SuccessfulCall"), failed=num("FailedCall"),
                    retransmissions=num("Retransmissions"), elapsed=elapsed, cpu_seconds=cpu, exit_code=code,
                    wall=wall)


def sample_users(sc: SippScenario, calls: int, most: int = 500) -> list[str]:
    """Up to ``most`` of a step's users, evenly spread, first and last included."""
    if calls <= most:
        picks = range(calls)
    else:
        picks = sorted({round(k * (calls - 1) / (most - 1)) for k in range(most)})
    return [user_name(sc.prefix, i) for i in picks]


def unregister_step(workdir: Path, kam, sc: SippScenario, calls: int, rate: int, step_no: int,
                    sample: list[str]) -> dict:
    """Not timed: REGISTER ``Contact: *``, ``Expires: 0`` (with digest) for users 0..calls-1, then
    the sampled users looked up; again at half the rate (at most 3 attempts) while some are left."""
    attempts: list[dict] = []
    left = sample
    for attempt in range(3):
        t = time.monotonic()
        step = run_sipp(workdir, kam, sc.unregister, sc.csv, rate, 0, step_no, sc.port, calls=calls,
                        label=f"{sc.kind}-unregister{attempt}")
        counts = kam.binding_counts(sample)
        left = [u for u, n in counts.items() if n]
        attempts.append({"rate": rate, "successful": step.successful, "failed": step.failed,
                         "retransmissions": step.retransmissions, "seconds": round(time.monotonic() - t, 2),
                         "sample_left_bound": len(left)})
        if not left and step.successful == calls:
            break
        rate = max(200, rate // 2)
    return {"attempts": attempts, "ok": not left}


SETTLE_MAX_S = 10.0      # at most this long before each measured step or round ...
SETTLE_BUSY_CORES = 0.3  # ... for the machine to be this idle


def settle() -> dict:
    """Wait (bounded) until the machine is nearly idle before a measured SIPp step or engine
    round: an overloaded step leaves kamailio working through its socket buffer's backlog (and
    SIPp's retransmissions) for a while after SIPp has exited, which would otherwise be charged to
    whatever comes next. Applied alike to both sides; what it found is kept in the results."""
    waited, busy = wait_for_quiet(SETTLE_MAX_S, SETTLE_BUSY_CORES, window=0.25)
    return {"settle_seconds": round(waited, 2), "busy_cores_before": round(busy, 2)}


def run_step(workdir: Path, kam, sc: SippScenario, rate: int, seconds: float, step_no: int,
             best: float = 0.0) -> tuple[SippStep, dict]:
    """One ramp step: SIPp at ``rate`` for ``sc.calls(rate, seconds)`` calls, kamailio's CPU
    over it; for a scenario with ``unregister``, also (not timed) a sample of the step's users
    looked up before (``sample_bound_before``: must be 0, they have no binding) and after
    (``sample_bound_after``: one binding each when every call succeeded), then the un-register,
    at the best clean rate of the ramp so far (``best``, this step included), which kamailio
    sustains, or else at 90 % of the rate this step achieved."""
    calls = sc.calls(rate, seconds)
    sample = sample_users(sc, calls) if sc.unregister is not None else []
    before = kam.binding_counts(sample)
    quiet = settle()
    k0 = tree_ticks(kam.process.pid)
    step = run_sipp(workdir, kam, sc.scenario, sc.csv, rate, seconds, step_no, sc.port, calls=calls, label=sc.kind)
    k1 = tree_ticks(kam.process.pid)
    d = step.as_dict()
    d["kind"] = sc.kind
    d.update(quiet)
    d["kamailio_cpu_us_per_registration"] = (round(1e6 * (k1 - k0) / CLOCK_TICKS / step.successful, 1)
                                             if step.successful else None)
    if sc.unregister is not None:
        after = kam.binding_counts(sample)
        d["sample"] = len(sample)
        d["sample_bound_before"] = sum(1 for n in before.values() if n)
        d["sample_bound_after"] = sum(1 for n in after.values() if n == 1)
        d["fresh"] = d["sample_bound_before"] == 0
        if step.clean:
            best = max(best, step.rate)
        urate = int(best) if best else max(500, int(0.9 * step.rate))
        d["unregister"] = unregister_step(workdir, kam, sc, calls, urate, step_no, sample)
    return step, d


def sipp_ramp(workdir: Path, kam, sc: SippScenario, rates: list[int], seconds: float,
              round_no: int) -> list[dict]:
    """Rising rates until SIPp saturates (achieved < 85 % of the target) or calls fail twice.

    "sipp-refresh": every step uses the same local port, so SIPp's Contact is the same and
    kamailio keeps one binding per user instead of one per step. "sipp-like-engine": see
    :class:`SippScenario`; a step counts for the ceiling only if its users had no binding."""
    steps: list[dict] = []
    saturated = failing = 0
    best = 0.0
    for rate in rates:
        step, d = run_step(workdir, kam, sc, rate, seconds, round_no * 100 + len(steps), best)
        d["counts"] = step.clean and d.get("fresh", True)
        if d["counts"]:
            best = max(best, step.rate)
        extra = ""
        if sc.unregister is not None:
            u = d["unregister"]
            extra = (f"  new bindings {d['sample_bound_after']}/{d['sample']} sampled (bound before: "
                     f"{d['sample_bound_before']}), un-registered {'ok' if u['ok'] else 'NOT ALL'} "
                     f"in {sum(a['seconds'] for a in u['attempts']):.1f} s")
        print(f"  {sc.kind:16s} r{round_no} target {rate:>6}/s  achieved {step.rate:8.1f}/s  ok {step.successful}"
              f"/{step.calls}  failed {step.failed}  retrans {step.retransmissions}  "
              f"cpu {d['cpu_us_per_registration']} us/reg  kamailio {d['kamailio_cpu_us_per_registration']} us/reg"
              f"{extra}", flush=True)
        steps.append(d)
        failing = failing + 1 if not step.clean else 0
        saturated = saturated + 1 if step.rate < 0.85 * rate else 0
        if failing >= 2 or saturated >= 2 or (sc.unregister is not None and not d["unregister"]["ok"]):
            break
    return steps


# --- engine --------------------------------------------------------------------------------------


class KamailioClock(threading.Thread):
    """kamailio's CPU (utime+stime of its processes) sampled every ``every`` s with the monotonic
    clock, so that its share can be read for the engine's measured window afterwards (from the
    first ``add`` to the last 200, as the workers report them), like SIPp's steps, instead of over
    the workers' whole lives (start-up and the un-REGISTERs included)."""

    def __init__(self, root: int, every: float = 0.05):
        super().__init__(daemon=True)
        self.pids = process_tree(root)
        self.every = every
        self.samples: list[tuple[float, int]] = []
        self._halt = threading.Event()

    def sample(self) -> None:
        self.samples.append((time.monotonic(), sum(pids_cpu_ticks(self.pids).values())))

    def run(self) -> None:
        self.sample()
        while not self._halt.wait(self.every):
            self.sample()

    def __enter__(self) -> "KamailioClock":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self._halt.set()
        self.join(5)
        self.sample()

    def ticks_at(self, t: float) -> float:
        """Ticks at monotonic time ``t``, interpolated between the samples around it."""
        before = max((x for x in self.samples if x[0] <= t), default=self.samples[0])
        after = min((x for x in self.samples if x[0] >= t), default=self.samples[-1])
        if after[0] <= before[0]:
            return float(before[1])
        return before[1] + (after[1] - before[1]) * (t - before[0]) / (after[0] - before[0])

    def window(self, start: float, end: float, registered: int) -> dict:
        cpu = (self.ticks_at(end) - self.ticks_at(start)) / CLOCK_TICKS
        return {"kamailio_cpu_us_per_registration_window": round(1e6 * cpu / registered, 1) if registered else None,
                "kamailio_cores_window": round(cpu / (end - start), 3) if end > start else None}


def run_worker(job: str, args: list[str], bound: float, on_line=None,
               source: Path | None = None) -> tuple[dict, float]:
    """Run bench/sip_worker.py; return its last JSON line and its CPU seconds (rusage).

    ``source``: a ``src`` directory whose ``sipphones`` the worker imports instead of the
    working tree's (``--baseline``: an earlier commit measured in the same run)."""
    argv = [sys.executable, str(REPO / "bench" / "sip_worker.py"), job, *args]
    env = None
    if source is not None:
        env = dict(os.environ, PYTHONPATH=str(source))
    cpu0 = children_cpu()
    errfile = tempfile.TemporaryFile("w+")  # a file, not a pipe: a chatty worker must never block
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=errfile, stdin=subprocess.DEVNULL,
                            cwd=REPO, start_new_session=True, text=True, env=env)
    last: dict = {}
    deadline = time.monotonic() + bound
    try:
        assert proc.stdout is not None
        for line in proc.stdout:          # ends when the worker closes stdout (exits)
            line = line.strip()
            if line.startswith("{"):
                last = json.loads(line)
                if on_line is not None:
                    on_line(proc, last)
            if time.monotonic() > deadline:
                break
        try:
            proc.wait(max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            pass
    finally:
        stop_process(proc)
    errfile.seek(0)
    err = errfile.read()
    errfile.close()
    if proc.returncode not in (0, None) and not last:
        raise RuntimeError(f"sip_worker {job} failed ({proc.returncode}):\n{err[-3000:]}")
    if err.strip():
        last.setdefault("stderr_tail", err[-1500:])
    return last, children_cpu() - cpu0


def engine_round(kam, count: int, concurrency: int, round_no: int, loop: str, source: Path | None = None,
                 label: str = "engine") -> dict:
    quiet = settle()
    k0 = tree_ticks(kam.process.pid)
    with KamailioClock(kam.process.pid) as clock:
        result, cpu = run_worker("throughput", [
            "--server", f"127.0.0.1:{kam.udp_port}", "--domain", DOMAIN, "--prefix", PREFIX,
            "--count", str(count), "--concurrency", str(concurrency), "--loop", loop, "--timeout", "120"], 300,
            source=source)
    k1 = tree_ticks(kam.process.pid)
    r = result["rounds"][0]
    r.update(clock.window(r["start_monotonic"], r["last_registered_monotonic"], r["registered"]))
    r["worker_cpu_seconds_total"] = round(cpu, 3)
    r["kamailio_cpu_us_per_registration"] = (round(1e6 * (k1 - k0) / CLOCK_TICKS / (r["registered"] + r["unregistered"]), 1)
                                             if r["registered"] else None)
    r["rss_mb"] = result.get("rss_mb")
    r.update(quiet)
    print(f"  {label:8s} r{round_no} {count} phones, {concurrency} in flight: {r['rate']:8.1f}/s  "
          f"ok {r['registered']}/{count}  failed {r['failed']}  cpu {r['cpu_us_per_registration']} us/reg "
          f"(share {r['cpu_share']})  kamailio {r['kamailio_cpu_us_per_registration_window']} us/reg "
          f"({r['kamailio_cores_window']} core)  un-REGISTER {r['stop_rate']}/s", flush=True)
    return r


def engine_round_sharded(kam, count: int, concurrency: int, round_no: int, loop: str, workers: int,
                         label: str = "engine") -> dict:
    """The same phones split over ``workers`` processes by ``shard_of`` (what ``sipphones monitor
    --workers N`` does): every worker loads its shard, then all start their measured windows at
    once; rate = all registrations / (last 200 anywhere - first add anywhere); CPU = the sum of
    the workers' CPU in their windows."""
    quiet = settle()
    k0 = tree_ticks(kam.process.pid)
    procs, errs = [], []
    clock = KamailioClock(kam.process.pid)
    clock.start()
    try:
        for k in range(workers):
            err = tempfile.TemporaryFile("w+")
            errs.append(err)
            procs.append(subprocess.Popen(
                [sys.executable, str(REPO / "bench" / "sip_worker.py"), "throughput",
                 "--server", f"127.0.0.1:{kam.udp_port}", "--domain", DOMAIN, "--prefix", PREFIX,
                 "--count", str(count), "--shard", str(k), "--shards", str(workers), "--wait-go",
                 "--concurrency", str(concurrency), "--loop", loop, "--timeout", "120"],
                stdout=subprocess.PIPE, stderr=err, stdin=subprocess.PIPE, cwd=REPO, start_new_session=True,
                text=True))
        for proc in procs:                      # bounded: the worker prints "loaded" within seconds
            line = proc.stdout.readline()
            if '"loaded"' not in line:
                raise RuntimeError(f"sip_worker shard did not load: {line!r}")
        for proc in procs:
            proc.stdin.write("go\n")
            proc.stdin.flush()
        results = []
        for proc, err in zip(procs, errs):
            out, _ = proc.communicate(timeout=300)
            last = [json.loads(x) for x in out.splitlines() if x.startswith("{")]
            if proc.returncode != 0 or not last:
                err.seek(0)
                raise RuntimeError(f"sip_worker shard failed ({proc.returncode}):\n{err.read()[-3000:]}")
            results.append(last[-1]["rounds"][0])
    finally:
        clock.__exit__()
        for proc in procs:
            stop_process(proc)
        for err in errs:
            err.close()
    k1 = tree_ticks(kam.process.pid)
    registered = sum(r["registered"] for r in results)
    unregistered = sum(r["unregistered"] for r in results)
    start = min(r["start_monotonic"] for r in results)
    end = max(r["last_registered_monotonic"] for r in results)
    cpu = sum(r["cpu_seconds"] for r in results)
    r = {"workers": workers, "count": count, "registered": registered,
         "failed": sum(r["failed"] for r in results), "complete": all(r["complete"] for r in results)
         and registered == count, "seconds": round(end - start, 4),
         "rate": round(registered / (end - start), 1) if end > start else 0.0, "cpu_seconds": round(cpu, 4),
         "cpu_us_per_registration": round(1e6 * cpu / registered, 1) if registered else None,
         "cpu_share": round(cpu / (end - start), 3) if end > start else None, "unregistered": unregistered,
         "kamailio_cpu_us_per_registration": (round(1e6 * (k1 - k0) / CLOCK_TICKS / (registered + unregistered), 1)
                                              if registered else None),
         **clock.window(start, end, registered), **quiet,
         "shards": results}
    print(f"  {label:8s} r{round_no} {count} phones in {workers} processes, {concurrency} in flight each: "
          f"{r['rate']:8.1f}/s  ok {registered}/{count}  failed {r['failed']}  cpu {r['cpu_us_per_registration']} "
          f"us/reg (cores {r['cpu_share']})  kamailio {r['kamailio_cpu_us_per_registration_window']} us/reg "
          f"({r['kamailio_cores_window']} core)", flush=True)
    return r


# --- monitor capacity ----------------------------------------------------------------------------


def sample_process(pid: int, kam_pid: int, hold: float, every: float) -> tuple[list[dict], dict]:
    """CPU share and RSS of ``pid`` (and kamailio's CPU share) every ``every`` s for ``hold`` s."""
    samples: list[dict] = []
    t_prev, c_prev, k_prev = time.monotonic(), proc_ticks(pid), tree_ticks(kam_pid)
    t_start, c_start, k_start = t_prev, c_prev, k_prev
    end = t_start + hold
    for _ in range(int(hold / every) + 2):
        time.sleep(max(0.0, min(every, end - time.monotonic())))
        now, c, mem = time.monotonic(), proc_ticks(pid), proc_rss_mb(pid)
        if c is None or c_prev is None or mem is None:
            break
        k = tree_ticks(kam_pid)
        samples.append({"t": round(now - t_start, 1), "cpu_share": round((c - c_prev) / CLOCK_TICKS / (now - t_prev), 3),
                        "rss_mb": round(mem[0], 1), "hwm_mb": round(mem[1], 1),
                        "kamailio_cpu_share": round((k - k_prev) / CLOCK_TICKS / (now - t_prev), 3)})
        t_prev, c_prev, k_prev = now, c, k
        if now >= end - 0.05:
            break
    shares: dict = {"rss_mb_max": max((x["rss_mb"] for x in samples), default=None),
                    "cpu_share_max_window": max((x["cpu_share"] for x in samples), default=None)}
    if samples and c_start is not None:
        shares["cpu_share"] = round((c_prev - c_start) / CLOCK_TICKS / (t_prev - t_start), 4)
        shares["kamailio_cpu_share"] = round((k_prev - k_start) / CLOCK_TICKS / (t_prev - t_start), 4)
        shares["sampled_seconds"] = round(t_prev - t_start, 1)
    return samples, shares


def hold_agent(kam, phones: int, hold: float, start_rate: float, sample_every: float) -> dict:
    """Monitor capacity of the engine alone: a worker process running RegistrationAgent."""
    state: dict = {}

    def on_line(proc: subprocess.Popen, line: dict) -> None:
        if not line.get("ready"):
            return
        print(f"  agent    {line['registered']}/{phones} registered in {line['seconds']} s "
              f"(failed {line['failed']}); sampling for {hold:.0f} s", flush=True)
        state["samples"], state["shares"] = sample_process(proc.pid, kam.process.pid, hold - 0.5, sample_every)

    result, _ = run_worker("hold", [
        "--server", f"127.0.0.1:{kam.udp_port}", "--domain", DOMAIN, "--prefix", PREFIX, "--count", str(phones),
        "--expire-minutes", "1", "--hold", str(hold), "--start-rate", str(start_rate), "--timeout", "120",
        "--concurrency", "200"], hold + 400, on_line)
    result["engine"] = "RegistrationAgent (bench/sip_worker.py hold)"
    result["samples"] = state.get("samples", [])
    result.update(state.get("shares", {}))
    return result


def hold_cli(kam, store, phones: int, hold: float, start_rate: float, sample_every: float, log_dir: Path) -> dict:
    """Monitor capacity of the real command: ``sipphones monitor`` on a seeded SQLite store."""
    from bench.sip_monitor import point_at, run_monitor
    from tests.peers.procs import free_port

    point_at(store, f"127.0.0.1:{kam.udp_port}")
    return run_monitor(store, count=phones, hold=hold, start_rate=start_rate, sample_every=sample_every,
                       sampler=lambda pid, h, e: sample_process(pid, kam.process.pid, h, e),
                       free_port=free_port, log_dir=log_dir)


def hold_ok(h: dict, phones: int) -> bool:
    return (bool(h.get("first", {}).get("complete")) and h.get("registered_at_end") == phones
            and h.get("expired_during_hold") == 0 and h.get("failed_during_hold") == 0)


def print_hold(h: dict, phones: int, hold: float) -> None:
    print(f"  {h['engine']}: {h.get('refreshes')} refreshes in {hold:.0f} s ({h.get('refresh_rate')}/s), "
          f"failed {h.get('failed_during_hold')}, expired {h.get('expired_during_hold')}, registered at end "
          f"{h.get('registered_at_end')}/{phones}; CPU {h.get('cpu_share')} core, RSS {h.get('rss_mb_max')} MB",
          flush=True)


# --- main ----------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="about 2 minutes instead of about 10")
    ap.add_argument("--users", type=int, help="SIPp's digest users in kamailio (default: 10,000; the "
                                              "engine has its own range of --engine-phones / --hold-phones)")
    ap.add_argument("--engine-phones", type=int, help="distinct phones per engine round")
    ap.add_argument("--concurrency", type=int, default=200, help="engine: first REGISTERs in flight")
    ap.add_argument("--rounds", type=int, help="SIPp ramp + engine round pairs")
    ap.add_argument("--rates", help="SIPp step rates, comma-separated")
    ap.add_argument("--step-seconds", type=float, help="SIPp: seconds of traffic per step")
    ap.add_argument("--fresh-users", type=int, default=20000,
                    help="sipp-like-engine: its users in kamailio, the most registrations of one step (a step "
                         "at R/s registers min(R x step seconds, this) users; each binding holds ~1.2 KB of "
                         "kamailio's 64 MB of shared memory until the step's un-register)")
    ap.add_argument("--hold-phones", type=int, default=10000, help="monitor capacity: phones held (0: skip)")
    ap.add_argument("--hold", type=float, help="monitor capacity: seconds held after all registered")
    ap.add_argument("--monitor", choices=("cli", "agent", "both"),
                    help="monitor capacity of: the `sipphones monitor` command on a seeded store (cli), the "
                         "RegistrationAgent alone (agent), or both (default: cli for --quick, both otherwise)")
    ap.add_argument("--start-rate", type=float, default=1000.0, help="monitor capacity: first registrations/s")
    ap.add_argument("--loop", choices=("asyncio", "uvloop"), default="asyncio", help="engine event loop")
    ap.add_argument("--engine-workers", default="1,2",
                    help="engine processes to measure in every round, comma-separated (N > 1: the phones split "
                         "as `sipphones monitor --workers N` splits them)")
    ap.add_argument("--baseline", metavar="REV",
                    help="also measure the engine of this git revision (git archive of its src/) in every round")
    ap.add_argument("--skip-sipp", action="store_true")
    ap.add_argument("--keep", action="store_true", help="keep the work directory (logs, SIPp stats)")
    ap.add_argument("--out", type=Path, help="result JSON (default bench/results/sip-<time>-<mode>.json)")
    args = ap.parse_args(argv)

    quick = args.quick
    engine_workers = [int(w) for w in args.engine_workers.split(",")]
    users = args.users or 10000
    engine_phones = args.engine_phones or (5000 if quick else 10000)
    rounds = args.rounds or (2 if quick else 3)
    rates = [int(r) for r in args.rates.split(",")] if args.rates else (
        [4000, 8000, 12000, 16000, 20000, 24000] if quick
        else [2000, 4000, 6000, 8000, 10000, 12000, 14000, 16000, 20000, 24000, 28000, 32000])
    step_seconds = args.step_seconds or (3.0 if quick else 5.0)
    hold = args.hold if args.hold is not None else (65.0 if quick else 150.0)
    hold_phones = args.hold_phones
    monitor_modes = {"cli": ["cli"], "agent": ["agent"], "both": ["agent", "cli"]}[
        args.monitor or ("cli" if quick else "both")] if hold_phones > 0 else []
    for tool in ("kamailio", "sipp"):
        if shutil.which(tool) is None:
            print(f"{tool} is not installed", file=sys.stderr)
            return 2

    started = time.time()
    mode = "quick" if quick else "full"
    workdir = Path(tempfile.mkdtemp(prefix="sipbench-"))
    print(f"SIP benchmark ({mode}): {users} users, work dir {workdir}", flush=True)
    kam = None
    ok = True
    out: dict = {"mode": mode, "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
                 "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                             "load_at_start": os.getloadavg()},
                 "settings": {"users": users, "engine_phones": engine_phones, "concurrency": args.concurrency,
                              "rounds": rounds, "sipp_rates": rates, "sipp_step_seconds": step_seconds,
                              "fresh_users": args.fresh_users,
                              "hold_phones": hold_phones, "hold_seconds": hold, "start_rate": args.start_rate,
                              "monitor": monitor_modes, "loop": args.loop, "baseline": args.baseline,
                              "engine_workers": engine_workers}}
    try:
        store = None
        extra_users: list[tuple[str, str]] = []
        if "cli" in monitor_modes:
            from bench.sip_monitor import seed_store
            t = time.monotonic()
            store = seed_store(workdir / "store", hold_phones, domain=DOMAIN)
            extra_users = store.credentials
            print(f"store seeded with {hold_phones} phones in {time.monotonic() - t:.1f} s", flush=True)
        t = time.monotonic()
        engine_users = max(engine_phones, hold_phones if "agent" in monitor_modes else 0)
        fresh_users = 0 if args.skip_sipp else args.fresh_users
        kam = start_registrar(workdir, users, engine_users, extra_users, fresh_users)
        print(f"kamailio pid {kam.process.pid} on 127.0.0.1:{kam.udp_port} (udp), {users} sipp-refresh + "
              f"{fresh_users} sipp-like-engine + {engine_users} engine + {len(extra_users)} monitor users, "
              f"up in {time.monotonic() - t:.1f} s", flush=True)
        from tests.peers.procs import free_port
        sipp_port = free_port("127.0.0.1", tcp=False)
        fresh_port = free_port("127.0.0.1", tcp=False, avoid={sipp_port})
        baseline_src = None
        if args.baseline:
            tree = workdir / "baseline"
            tree.mkdir()
            archive = subprocess.run(["git", "-C", str(REPO), "archive", args.baseline, "src"],
                                     capture_output=True, check=True, timeout=60).stdout
            subprocess.run(["tar", "-x", "-C", str(tree)], input=archive, check=True, timeout=60)
            baseline_src = tree / "src"
        baseline_rounds: list[dict] = []
        scenario, csv = write_sipp_files(workdir, users)
        scenarios = [SippScenario("sipp-refresh", scenario, csv, users, sipp_port, SIPP_PREFIX),
                     like_engine_scenario(workdir, fresh_users, fresh_port)]
        sipp_steps: dict[str, list[dict]] = {sc.kind: [] for sc in scenarios}
        engine_rounds: list[dict] = []
        sharded_rounds: dict[int, list[dict]] = {w: [] for w in engine_workers if w > 1}
        for r in range(1, rounds + 1):
            if not args.skip_sipp:
                # the two ramps swap places every round, so neither is always the one next to the
                # engine's rounds
                for sc in (scenarios if r % 2 else scenarios[::-1]):
                    sipp_steps[sc.kind] += [dict(d, round=r)
                                            for d in sipp_ramp(workdir, kam, sc, rates, step_seconds, r)]
            if 1 in engine_workers:
                engine_rounds.append(dict(engine_round(kam, engine_phones, args.concurrency, r, args.loop), round=r))
            for w in sharded_rounds:
                sharded_rounds[w].append(dict(engine_round_sharded(kam, engine_phones, args.concurrency, r,
                                                                   args.loop, w), round=r))
            if baseline_src is not None:
                baseline_rounds.append(dict(engine_round(kam, engine_phones, args.concurrency, r, args.loop,
                                                         baseline_src, f"baseline {args.baseline}"), round=r))
        out["sipp"] = {kind: sipp_summary(steps) for kind, steps in sipp_steps.items()}
        # The figure for the target: the ceiling of SIPp doing the engine's SIP work.
        sipp_max = out["sipp"]["sipp-like-engine"]["max_clean_rate"]
        sipp_refresh_max = out["sipp"]["sipp-refresh"]["max_clean_rate"]
        engine_rates = [e["rate"] for e in engine_rounds if e["complete"]]
        engine_rate = statistics.median(engine_rates) if engine_rates else None
        ratio = round(engine_rate / sipp_max, 3) if engine_rate and sipp_max else None
        out["engine"] = {"rounds": engine_rounds, "median_rate": engine_rate,
                         "median_cpu_us_per_registration": statistics.median(
                             [e["cpu_us_per_registration"] for e in engine_rounds if e["cpu_us_per_registration"]] or [0]),
                         "median_kamailio_cpu_us_per_registration": _median_of(
                             engine_rounds, "kamailio_cpu_us_per_registration_window")}
        out["ratio"] = ratio
        out["ratio_vs_sipp_refresh"] = (round(engine_rate / sipp_refresh_max, 3)
                                        if engine_rate and sipp_refresh_max else None)
        out["engine_workers"] = {}
        for w, rs in sharded_rounds.items():
            done = [x["rate"] for x in rs if x["complete"]]
            med = statistics.median(done) if done else None
            out["engine_workers"][str(w)] = {
                "rounds": rs, "median_rate": med,
                "median_cpu_us_per_registration": statistics.median(
                    [x["cpu_us_per_registration"] for x in rs if x["cpu_us_per_registration"]] or [0]),
                "median_kamailio_cpu_us_per_registration": _median_of(rs, "kamailio_cpu_us_per_registration_window"),
                "ratio": round(med / sipp_max, 3) if med and sipp_max else None,
                "ratio_vs_sipp_refresh": round(med / sipp_refresh_max, 3) if med and sipp_refresh_max else None}
            if len(done) != len(rs):
                ok = False
        if baseline_rounds:
            done = [b["rate"] for b in baseline_rounds if b["complete"]]
            out["baseline"] = {"revision": args.baseline, "rounds": baseline_rounds,
                               "median_rate": statistics.median(done) if done else None,
                               "median_cpu_us_per_registration": statistics.median(
                                   [b["cpu_us_per_registration"] for b in baseline_rounds
                                    if b["cpu_us_per_registration"]] or [0])}
        if not args.skip_sipp and (sipp_max is None or sipp_refresh_max is None):
            ok = False
        if any(not d["unregister"]["ok"] for d in sipp_steps["sipp-like-engine"]):
            ok = False
        if len(engine_rates) != len(engine_rounds):
            ok = False

        out["hold"] = {}
        for how in monitor_modes:
            print(f"monitor capacity ({how}): {hold_phones} phones, Expires 60, held {hold:.0f} s", flush=True)
            if how == "agent":
                h = hold_agent(kam, hold_phones, hold, args.start_rate, 5.0)
            else:
                h = hold_cli(kam, store, hold_phones, hold, args.start_rate, 5.0, workdir)
            out["hold"][how] = h
            ok = ok and hold_ok(h, hold_phones)
            print_hold(h, hold_phones, hold)
    except KeyboardInterrupt:
        ok = False
        print("interrupted", file=sys.stderr)
    finally:
        if kam is not None:
            kam.stop()
            log = kam.process.log_path
            out["kamailio_log_bytes"] = log.stat().st_size if log.exists() else None
    out["seconds"] = round(time.time() - started, 1)
    out["ok"] = ok

    RESULTS.mkdir(parents=True, exist_ok=True)
    path = args.out or RESULTS / f"sip-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime(started))}-{mode}.json"
    path.write_text(json.dumps(out, indent=2) + "\n")
    print_summary(out)
    print(f"results: {path}")
    if args.keep:
        print(f"work dir kept: {workdir}")
    else:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0 if ok else 1


def sipp_summary(steps: list[dict]) -> dict:
    """A scenario's ceiling: the best rate of a step that counts (clean; for sipp-like-engine also
    on users without a binding), with SIPp's and kamailio's CPU per registration in that step."""
    counted = [s for s in steps if s.get("counts", s["clean"])]
    best = max(counted, key=lambda s: s["rate"], default=None)
    return {"steps": steps, "max_clean_rate": best["rate"] if best else None,
            "max_clean_rate_wall": max((s["rate_wall"] for s in counted), default=None),
            "cpu_us_per_registration_at_max": best["cpu_us_per_registration"] if best else None,
            "kamailio_cpu_us_per_registration_at_max": best["kamailio_cpu_us_per_registration"] if best else None}


def _median_of(rounds: list[dict], key: str) -> float | None:
    values = [r[key] for r in rounds if r.get(key) is not None]
    return statistics.median(values) if values else None


def print_summary(out: dict) -> None:
    print("\n== SIP benchmark summary ==")
    sipp = out.get("sipp", {})
    eng = out.get("engine", {})
    labels = {"sipp-like-engine": "SIPp like the engine (;rport, new bindings)",
              "sipp-refresh": "SIPp original scenario (refreshes, no ;rport)"}
    for kind in ("sipp-like-engine", "sipp-refresh"):
        c = sipp.get(kind, {})
        if c.get("max_clean_rate") is not None:
            label = labels[kind] + " ceiling:"
            print(f"{label:55s} {c['max_clean_rate']:8.1f} registrations/s "
                  f"({c.get('cpu_us_per_registration_at_max')} us CPU each; kamailio "
                  f"{c.get('kamailio_cpu_us_per_registration_at_max')} us each)")
    engines = [("engine, 1 process", eng)] + [(f"engine, {w} processes", e)
                                              for w, e in (out.get("engine_workers") or {}).items()]
    for name, e in engines:
        if e.get("median_rate") is not None:
            label = f"{name} (median of {len(e['rounds'])} rounds):"
            print(f"{label:55s} {e['median_rate']:8.1f} registrations/s ({e['median_cpu_us_per_registration']} us "
                  f"CPU each; kamailio {e.get('median_kamailio_cpu_us_per_registration')} us each)")
    base = out.get("baseline")
    if base and base.get("median_rate") is not None:
        label = f"baseline {base['revision']} (same run):"
        print(f"{label:55s} {base['median_rate']:8.1f} registrations/s "
              f"({base['median_cpu_us_per_registration']} us CPU each)")
    ratios = [("1 process", out.get("ratio"), out.get("ratio_vs_sipp_refresh"))]
    ratios += [(f"{w} processes", e.get("ratio"), e.get("ratio_vs_sipp_refresh"))
               for w, e in (out.get("engine_workers") or {}).items()]
    if any(r is not None or old is not None for _, r, old in ratios):
        print("ratio engine / SIPp. The figure for the target (>= 0.5) is the first: SIPp doing the engine's SIP "
              "work\n(;rport in the Via, every registration a new binding). The second is the old figure, against "
              "SIPp's\noriginal scenario, which costs kamailio less per registration (no ;rport, refreshes):")
        for name, r, old in ratios:
            verdict = ("meets" if r >= 0.5 else "below") + " the 0.5 target" if r is not None else "no ceiling"
            print(f"  engine ({name}) / SIPp like the engine: {r if r is not None else '-':>8}  ({verdict});"
                  f"  / SIPp original scenario: {old if old is not None else '-'}")
    for how, h in (out.get("hold") or {}).items():
        cpu, rss = h.get("cpu_share"), h.get("rss_mb_max")
        verdict = "meets" if cpu is not None and rss is not None and cpu < 0.5 and rss < 300 else "misses"
        print(f"monitor ({how}): {h['count']} phones, Expires 60, {h.get('refresh_rate')} refreshes/s: "
              f"CPU {cpu} core (max 5 s window {h.get('cpu_share_max_window')}), RSS {rss} MB "
              f"({verdict} the < 0.5 core, < 300 MB target); kamailio {h.get('kamailio_cpu_share')} core")
    print(f"took {out['seconds']} s, ok={out['ok']}")


if __name__ == "__main__":
    raise SystemExit(main())
