"""The verdicts, decided exactly as Autobahn|Testsuite 25.10.1 decides them, rules in its order.

Invariants (the order is the fuzzer's and must not change):
1. ``behavior``: the first verdict, in the fuzzer's order (INFORMATIONAL, NON-STRICT, OK: the
   iteration order of its Python 2 dict), whose event list equals what was received; else
   FAILED. This runs whether or not the handshake completed.
2. If the handshake never completed: ``behaviorClose`` FAILED. Else, first that applies:
   the wrong side closed -> FAILED; a clean close was required and it was not -> UNCLEAN;
   the testee's Close carried a code not allowed -> WRONG CODE (a Close without a code
   passes); we had to drop TCP ourselves -> FAILED BY CLIENT; else OK.
3. ``wrong_side_fatal`` and the wrong side closed -> ``behavior`` FAILED.
4. Then the case's own ``Rule`` (7.x WRONG CODE fails behavior; 7.1.6 and 7.13.x are
   INFORMATIONAL; 10.1.1 counts the frames it sent).
5. 9.x have an ``EchoCheck`` instead and no event lists: ``behavior`` and ``result`` are what
   ``EchoTally`` makes of the echoes' types and lengths in arrival order; rule 2 still decides
   the close. Time limits are not judged here: the case's own timer closes the connection,
   and an echo that has not come by the end of the connection never counts.
   INFORMATIONAL; 10.1.1 counts the frames it sent; 12.x/13.x, once open, set ``behavior`` and
   ``result`` themselves: UNIMPLEMENTED without the extension, else their echo checks).
Pure functions over data; no I/O.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

__all__ = ["EchoCheck", "EchoTally", "Observed", "Rule", "Verdict", "decide"]

OK = "OK"
NON_STRICT = "NON-STRICT"
INFORMATIONAL = "INFORMATIONAL"
FAILED = "FAILED"
UNCLEAN = "UNCLEAN"
WRONG_CODE = "WRONG CODE"
FAILED_BY_CLIENT = "FAILED BY CLIENT"
UNIMPLEMENTED = "UNIMPLEMENTED"

# The fuzzer's expected lists live in a Python 2 dict; this is the order it iterates them.
MATCH_ORDER = (INFORMATIONAL, NON_STRICT, OK)

# The fuzzer's fixed result strings (matched verbatim by gates and expectations files).
MATCHED = "Actual events match at least one expected."
DIFFERED = "Actual events differ from any expected."
DROPPED = "TCP connection was dropped without close handshake"
WRONG_SIDE = "The connection was failed by the wrong endpoint"
NOT_CLEAN = "The spec requires the connection to be failed cleanly here"
BY_CLIENT = "It is preferred that the server close the TCP connection"
PROPER = "Connection was properly closed"
NEVER_OPEN = "The WebSocket opening handshake was never completed!"
UNDEFINED = "Actual events are undefined by the spec."
PROCESSED_FIRST = "Text message was processed before close."
CLOSED_FIRST = "Close was processed before text message could be returned."
NEVER_OPEN_FRAMES = "WebSocket connection was never open"


class Rule(enum.Enum):
    """What a case decides in code after the common rules."""

    PLAIN = "plain"
    WRONG_CODE_FAILS = "wrong-code-fails"  # 7.x: a WRONG CODE close also fails behavior
    INFORMATIONAL = "informational"  # 7.13.x: the RFC leaves the outcome open
    INFORMATIONAL_ORDER = "informational-order"  # 7.1.6: which came first, message or close
    FRAME_COUNT = "frame-count"  # 10.1.1: the auto-fragmented frames we sent
    OWN = "own"  # 12.x/13.x: the case sets behavior and result itself once open


@dataclass(frozen=True, slots=True)
class EchoCheck:
    """A 9.x case: the echo of what we sent is checked by type and length only. ``round_trips``
    0 is one message (9.1-9.6); N is N messages, each sent when the previous echo is back
    (9.7, 9.8). ``limit`` is the case's own time limit, in seconds (its result text names it).
    ``says_got_binary``: 9.4.x's text for a text echo says "but got binary" (the fuzzer's)."""

    binary: bool
    length: int
    limit: float
    round_trips: int = 0
    says_got_binary: bool = False


class EchoTally:
    """The 9.x judgement, one echo at a time: ``add`` says whether to send the next message
    (else the fuzzer closes with 1000); ``behavior`` and ``result`` are the verdict so far."""

    def __init__(self, check: EchoCheck) -> None:
        self.check = check
        self.behavior = FAILED
        self.sent = 1
        if check.round_trips:
            self.result = f"Case did not finish within {check.limit:.0f} seconds."
        else:
            self.result = f"Did not receive message within {check.limit:.0f} seconds."

    def add(self, binary: bool, length: int) -> bool:
        """One echo arrived; True: send the next message."""
        check = self.check
        if check.round_trips:
            if binary != check.binary or length != check.length:
                self.behavior = FAILED
                self.result = (
                    "Echo'ed message type or length differs from what I sent "
                    f"(got binary = {binary}, payload length = {length})."
                )
            elif self.sent < check.round_trips:
                self.sent += 1
                return True
            else:
                self.behavior = OK
                self.result = "Ok, received all echo'ed messages in time."
            return False
        kind = "binary" if check.binary else "text"
        if binary != check.binary:
            got = "binary" if binary or check.says_got_binary else "text"
            # The behavior stays as it was: a wrong echo only changes the text.
            self.result = f"Expected {kind} message with payload, but got {got}."
        elif length != check.length:
            self.result = (
                f"Expected {kind} message with payload of length {check.length}, but got {length}."
            )
        else:
            self.behavior = OK
            self.result = f"Received {kind} message of length {length}."
        return False


@dataclass(frozen=True, slots=True)
class Observed:
    """What the connection ended with: the case's events and the fuzzer-side close flags;
    ``echoes`` are the (binary, length) of each message of a 9.x case, in order."""

    received: Sequence[object]
    was_open: bool
    closed_by_me: bool
    was_clean: bool
    dropped_by_me: bool
    remote_close_code: int | None
    tx_frames: Mapping[int, int]
    echoes: Sequence[tuple[bool, int]] = ()
    own: tuple[str, str] | None = None  # Rule.OWN: (behavior, result) the case settled


@dataclass(frozen=True, slots=True)
class Verdict:
    """The four strings a report carries."""

    behavior: str
    behavior_close: str
    result: str
    result_close: str


def _behavior(expected: Mapping[str, Sequence[object]], received: Sequence[object]) -> str | None:
    for name in (*MATCH_ORDER, *(k for k in expected if k not in MATCH_ORDER)):
        if name in expected and list(expected[name]) == list(received):
            return name
    return None


def _close(
    seen: Observed, closed_by_fuzzer: bool, codes: Sequence[int], require_clean: bool
) -> tuple[str, str]:
    if not seen.was_open:
        return FAILED, NEVER_OPEN
    if closed_by_fuzzer != seen.closed_by_me:
        return FAILED, WRONG_SIDE
    if require_clean and not seen.was_clean:
        return UNCLEAN, NOT_CLEAN
    if seen.remote_close_code is not None and seen.remote_close_code not in codes:
        return WRONG_CODE, f"The close code should have been {','.join(map(str, codes))} or empty"
    if seen.dropped_by_me:
        return FAILED_BY_CLIENT, BY_CLIENT
    return OK, PROPER


def _frames_expected(length: int, fragment: int) -> dict[int, int]:
    return {0: length // fragment, 1: 1 if length % fragment else 0}


def decide(
    expected: Mapping[str, Sequence[object]],
    closed_by_fuzzer: bool,
    codes: Sequence[int],
    require_clean: bool,
    wrong_side_fatal: bool,
    rule: Rule | EchoCheck,
    seen: Observed,
    *,
    auto_fragment: tuple[int, int] = (0, 0),
) -> Verdict:
    """The verdict for one finished case; ``auto_fragment`` is (message length, fragment size)
    for ``Rule.FRAME_COUNT``."""
    # The fuzzer declares its expectations when the connection opens: none before that.
    matched = _behavior(expected, seen.received) if seen.was_open else None
    behavior, result = (matched, MATCHED) if matched else (FAILED, DIFFERED)
    behavior_close, result_close = _close(seen, closed_by_fuzzer, codes, require_clean)
    if seen.was_open and wrong_side_fatal and closed_by_fuzzer != seen.closed_by_me:
        behavior = FAILED

    if isinstance(rule, EchoCheck):
        if seen.was_open:
            tally = EchoTally(rule)
            for binary, length in seen.echoes:
                tally.add(binary, length)
            behavior, result = tally.behavior, tally.result
    elif rule is Rule.WRONG_CODE_FAILS and behavior_close == WRONG_CODE:
        behavior, result = FAILED, result_close
    elif rule is Rule.INFORMATIONAL:
        behavior = behavior_close = INFORMATIONAL
        result = UNDEFINED
    elif rule is Rule.INFORMATIONAL_ORDER:
        if behavior == OK:
            result = PROCESSED_FIRST
        elif behavior == NON_STRICT:
            result = CLOSED_FIRST
        behavior = behavior_close = INFORMATIONAL
    elif rule is Rule.OWN and seen.own is not None:
        behavior, result = seen.own
    elif rule is Rule.FRAME_COUNT:
        if not seen.was_open:
            behavior, result = FAILED, NEVER_OPEN_FRAMES
        else:
            want = _frames_expected(*auto_fragment)
            got = {0: seen.tx_frames.get(0, 0), 1: seen.tx_frames.get(1, 0)}
            if got != want:
                behavior = FAILED
                result = f"Frames transmitted {got} does not match what we expected {want}."
    return Verdict(behavior, behavior_close, result, result_close)
