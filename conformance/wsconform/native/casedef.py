"""How a case is declared: what it sends and when, what it expects, and how it must close.

Invariants:
- A case is data: a ``script`` of steps run when the connection opens, the event lists that
  earn each verdict, a ``CloseExpectation`` and, for the few cases that decide in code, one
  ``Rule`` (or, for 9.x, an ``EchoCheck``) from ``verdict``. Nothing here does I/O;
  ``session`` plays a case, ``verdict`` judges it.
- Case ids, descriptions and expectations come from the catalog; a definition only names its
  id (``cases/__init__`` checks each one is in the catalog).
- Times are the fuzzer's own, in seconds, so the wire logs show the same waits.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from wsconform.native.deflate import Offer
from wsconform.native.record import Event
from wsconform.native.verdict import EchoCheck, Rule

__all__ = [
    "INVALID_PAYLOAD",
    "NORMAL",
    "PROTOCOL_ERROR",
    "BeginFrame",
    "CaseSpec",
    "CloseAfter",
    "CloseExpectation",
    "ContinueLater",
    "EchoStream",
    "FrameData",
    "KillAfter",
    "SendClose",
    "SendCloseFrame",
    "SendFrame",
    "SendMessage",
    "Step",
    "fuzzer_closes",
    "testee_fails",
]

NORMAL = 1000
PROTOCOL_ERROR = 1002
INVALID_PAYLOAD = 1007


@dataclass(frozen=True, slots=True)
class SendFrame:
    """One raw frame; ``length`` repeats ``payload`` up to that size; ``chop`` splits the write
    into TCP sends of that many bytes; ``sync`` sends it as its own write (both with the
    fuzzer's short pause between writes)."""

    opcode: int
    payload: bytes = b""
    fin: bool = True
    rsv: int = 0
    length: int | None = None
    chop: int | None = None
    sync: bool = False


@dataclass(frozen=True, slots=True)
class BeginFrame:
    """A frame header alone (FIN clear) for a ``length``-byte payload that ``FrameData`` steps
    send later, masked as one payload: the fuzzer's streaming message API (6.4.3, 6.4.4)."""

    opcode: int
    length: int


@dataclass(frozen=True, slots=True)
class FrameData:
    """The next part of the payload of the frame ``BeginFrame`` opened."""

    payload: bytes


@dataclass(frozen=True, slots=True)
class SendClose:
    """Start the closing handshake through the checked API (codes 1000 or 3000-4999 only)."""

    code: int | None = None
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class SendCloseFrame:
    """Start the closing handshake with any code and raw reason bytes (no checks)."""

    code: int | None = None
    reason: bytes | None = None


@dataclass(frozen=True, slots=True)
class SendMessage:
    """A message through the fuzzer's message API, auto-fragmented into ``fragment``-byte frames."""

    payload: bytes
    binary: bool = False
    fragment: int = 0


@dataclass(frozen=True, slots=True)
class KillAfter:
    """After ``seconds``, fail the connection (Close 1001 "Going Away"; drop TCP if closing)."""

    seconds: float


@dataclass(frozen=True, slots=True)
class CloseAfter:
    """After ``seconds``, start the closing handshake (nothing if it already started)."""

    seconds: float


@dataclass(frozen=True, slots=True)
class ContinueLater:
    """After ``seconds``, run more steps (if the connection is still up). With a ``mark``, only
    if it is still open, and the event ``Timeout(mark)`` is recorded first (6.4.x)."""

    seconds: float
    steps: tuple[Step, ...]
    mark: str | None = None


@dataclass(frozen=True, slots=True)
class EchoStream:
    """12.x/13.x: ``count`` messages of ``length`` (characters for text data) cut one after
    another from test data set ``data``, each sent (auto-fragmented to ``fragment``) once the
    previous echo arrived; the case decides its own verdict and gives up after ``seconds``."""

    data: str
    length: int
    count: int
    fragment: int
    seconds: float


Step = (
    SendFrame
    | SendClose
    | SendCloseFrame
    | SendMessage
    | BeginFrame
    | FrameData
    | KillAfter
    | CloseAfter
    | ContinueLater
    | EchoStream
)


@dataclass(frozen=True, slots=True)
class CloseExpectation:
    """Who must close, with which codes (a Close without a code always passes), and whether
    the close must be clean; ``wrong_side_fatal`` makes the wrong side closing fail ``behavior``
    too (the UTF-8 cases: the testee did not notice the invalid text at all)."""

    closed_by_fuzzer: bool
    codes: tuple[int, ...]
    require_clean: bool
    wrong_side_fatal: bool = False


def fuzzer_closes(*codes: int) -> CloseExpectation:
    """The usual ending of a passing exchange: we close, cleanly, with 1000 (or ``codes``)."""
    return CloseExpectation(True, codes or (NORMAL,), require_clean=True)


def testee_fails(*codes: int) -> CloseExpectation:
    """The testee must fail the connection (1002 unless ``codes``); dropping TCP is allowed."""
    return CloseExpectation(False, codes or (PROTOCOL_ERROR,), require_clean=False)


@dataclass(frozen=True, slots=True)
class CaseSpec:
    """One case. ``expected`` maps a verdict (OK, NON-STRICT, INFORMATIONAL) to the exact
    event list that earns it; ``suppress_close`` stops the fuzzer from starting the closing
    handshake itself once the expected events have arrived; with an ``EchoCheck`` rule the
    echoes are counted, not recorded as events, and ``expected`` is empty (9.x); ``offers``
    are the permessage-deflate offers of the opening handshake (12.x and 13.x only)."""

    case_id: str
    script: tuple[Step, ...]
    expected: Mapping[str, tuple[Event, ...]]
    close: CloseExpectation
    suppress_close: bool = False
    rule: Rule | EchoCheck = Rule.PLAIN
    offers: tuple[Offer, ...] = ()
