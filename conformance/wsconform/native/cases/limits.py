"""Category 9, limits and performance: large messages, many fragments, small TCP writes and
many round trips must be echoed within the case's own time limit. Only the echo's type and
length are checked (``verdict.EchoCheck``); the fuzzer closes with 1000 once it has judged the
echo, or when the limit runs out (then without a code).

- 9.1/9.2: one text/binary frame of 64 KiB to 16 MiB.
- 9.3/9.4: a 4 MiB text/binary message in fragments of 64 B to 4 MiB.
- 9.5/9.6: one 1 MiB text/binary frame written in TCP chops of 64 to 2048 bytes.
- 9.7/9.8: 1,000 text/binary messages of 0 to 4096 bytes, each sent when the previous echo
  is back (the script's frame is sent again).
"""

from __future__ import annotations

from wsconform.native.casedef import (
    CaseSpec,
    CloseAfter,
    SendFrame,
    SendMessage,
    Step,
    fuzzer_closes,
)
from wsconform.native.verdict import EchoCheck

KIB, MIB = 2**10, 2**20
TEXT, BINARY = 1, 2
ROUND_TRIPS = 1000

# The fuzzer's payloads, repeated up to the case's length.
_TEXT_FILL = b"BAsd7&jh23"
_BINARY_FILL = bytes.fromhex("00fe23faf0")

# (length, seconds) of 9.1.n and 9.2.n.
_TEXT_SIZES = ((64 * KIB, 10), (256 * KIB, 10), (MIB, 100), (4 * MIB, 100), (8 * MIB, 100))
_BINARY_SIZES = ((64 * KIB, 10), (256 * KIB, 10), (MIB, 10), (4 * MIB, 10), (8 * MIB, 100))
_LARGEST = (16 * MIB, 100)
_FRAGMENTS = (64, 256, KIB, 4 * KIB, 16 * KIB, 64 * KIB, 256 * KIB, MIB, 4 * MIB)
_CHOPS = (64, 128, 256, 512, KIB, 2 * KIB)
# (length, seconds) of 9.7.n and 9.8.n.
_ROUND_TRIP_SIZES = ((0, 60), (16, 60), (64, 60), (256, 120), (KIB, 240), (4 * KIB, 480))

_FRAGMENTED_LENGTH, _FRAGMENTED_LIMIT = 4 * MIB, 100
_CHOPPED_LENGTH, _CHOPPED_LIMIT = MIB, 1000
# One payload object each, shared by the 9.3/9.4 cases: 9.4.1 sends 0xfe octets, every other
# one "*".
_STARS = b"*" * _FRAGMENTED_LENGTH
_OCTETS_FE = b"\xfe" * _FRAGMENTED_LENGTH


def _echo(case_id: str, *script: Step, check: EchoCheck) -> CaseSpec:
    return CaseSpec(case_id, script, {}, fuzzer_closes(), rule=check)


def _frame(case_id: str, binary: bool, size: tuple[int, int], chop: int | None = None) -> CaseSpec:
    length, limit = size
    fill = _BINARY_FILL if binary else _TEXT_FILL
    sent = SendFrame(BINARY if binary else TEXT, fill, length=length, chop=chop)
    return _echo(case_id, sent, CloseAfter(limit), check=EchoCheck(binary, length, limit))


def _fragmented(case_id: str, binary: bool, fragment: int) -> CaseSpec:
    payload = _OCTETS_FE if case_id == "9.4.1" else _STARS
    check = EchoCheck(binary, _FRAGMENTED_LENGTH, _FRAGMENTED_LIMIT, says_got_binary=binary)
    sent = SendMessage(payload, binary, fragment)
    return _echo(case_id, sent, CloseAfter(_FRAGMENTED_LIMIT), check=check)


def _round_trips(case_id: str, binary: bool, size: tuple[int, int]) -> CaseSpec:
    length, limit = size
    check = EchoCheck(binary, length, limit, round_trips=ROUND_TRIPS)
    sent = SendFrame(BINARY if binary else TEXT, b"\xfe" if binary else b"*", length=length)
    # The fuzzer arms its timer first, then sends the first message.
    return _echo(case_id, CloseAfter(limit), sent, check=check)


CASES = (
    *(_frame(f"9.1.{n}", False, s) for n, s in enumerate((*_TEXT_SIZES, _LARGEST), 1)),
    *(_frame(f"9.2.{n}", True, s) for n, s in enumerate((*_BINARY_SIZES, _LARGEST), 1)),
    *(_fragmented(f"9.3.{n}", False, f) for n, f in enumerate(_FRAGMENTS, 1)),
    *(_fragmented(f"9.4.{n}", True, f) for n, f in enumerate(_FRAGMENTS, 1)),
    *(
        _frame(f"9.5.{n}", False, (_CHOPPED_LENGTH, _CHOPPED_LIMIT), chop)
        for n, chop in enumerate(_CHOPS, 1)
    ),
    *(
        _frame(f"9.6.{n}", True, (_CHOPPED_LENGTH, _CHOPPED_LIMIT), chop)
        for n, chop in enumerate(_CHOPS, 1)
    ),
    *(_round_trips(f"9.7.{n}", False, s) for n, s in enumerate(_ROUND_TRIP_SIZES, 1)),
    *(_round_trips(f"9.8.{n}", True, s) for n, s in enumerate(_ROUND_TRIP_SIZES, 1)),
)
