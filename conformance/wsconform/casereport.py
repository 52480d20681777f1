"""One case's report JSON, whichever engine wrote it, read into what its HTML page shows.

Invariants:
- Reading only, from a mapping already parsed: nothing here touches the disk or formats HTML
  (``render`` does both); every text stays plain text for the template to escape.
- Both wire-log formats read into the same rows: Autobahn's tuples (``["TF", [len, text],
  opcode, fin, rsv, mask, repeat, chop, sync]``, ``"RF"``, ``"TO"``, ``"RO"``, its timers
  ``"CT"``/``"KL"``/``"TI"``, their firing ``"CTE"``/``"KLE"``/``"TIE"``, ``"WLM"``) and the
  native engine's dicts (``{"t", "kind": "tx-frame" | "rx-frame" | "tx-octets" | "rx-octets" |
  "timer" | "fired" | "note", ...}``). An entry of neither shape is kept as a note showing
  its JSON, so a report from another version still renders whole.
- A log longer than ``max_rows`` keeps its first rows and its last ``tail`` rows (the closing
  handshake) and says how many entries and frames are left out; event lists are cut at
  ``MAX_EVENTS`` the same way. Payloads are the engines' own previews (64 bytes at most);
  characters a person cannot see are shown as ``\\xNN`` escapes.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from wsconform import catalog

__all__ = [
    "MAX_EVENTS",
    "MAX_ROWS",
    "OCTETS_PREVIEW_BYTES",
    "PREVIEW_BYTES",
    "CaseView",
    "EventList",
    "Preview",
    "WireLog",
    "WireRow",
    "read",
    "visible",
    "wire_log",
]

# Both engines keep their wire logs short (9.x, 12.x and 13.x pause them), the longest seen
# is 183 entries (2.11); a page stays under about 100 KiB whatever a report holds.
MAX_ROWS = 240
TAIL_ROWS = 40
MAX_EVENTS = 50
OPCODES: Mapping[int, str] = {
    0: "continuation",
    1: "text",
    2: "binary",
    8: "close",
    9: "ping",
    10: "pong",
}
PREVIEW_BYTES = 64  # both engines cut a logged payload at 64 bytes and add " ..."
# TCP bytes repeat the frames' headers and payloads; their first octets show where a write
# was chopped, which is what a person reads them for.
OCTETS_PREVIEW_BYTES = 16
_CUT = " ..."


@dataclass(frozen=True, slots=True)
class Preview:
    """What a row shows of a payload or of TCP bytes."""

    text: str = ""
    kind: str = ""  # "text", "hex" or "" (no payload)
    size: int = 0  # bytes shown
    cut: bool = False


@dataclass(frozen=True, slots=True)
class WireRow:
    """One wire-log entry as a table row; ``None`` where the entry has no such field."""

    number: int  # 1-based position in the whole log, so a gap shows where rows were left out
    time_ms: float | None
    direction: str  # "sent", "received" or "" (timers, notes)
    what: str  # "text frame (1)", "TCP bytes", "timer", "timer fired", "note"
    frame: bool
    fin: bool | None = None
    rsv: int | None = None
    length: int | None = None
    mask: str | None = None
    payload: Preview = Preview()
    detail: str = ""


@dataclass(frozen=True, slots=True)
class WireLog:
    """The rows shown, and what was left out between ``head`` and ``tail``."""

    head: tuple[WireRow, ...]
    tail: tuple[WireRow, ...]
    hidden_entries: int
    hidden_frames: int
    timed: bool  # the engine stamped its entries (the native engine does, Autobahn does not)
    total: int


@dataclass(frozen=True, slots=True)
class EventList:
    """Events as ``kind: payload`` lines, with how many more were left out."""

    label: str
    events: tuple[str, ...]
    more: int


@dataclass(frozen=True, slots=True)
class CaseView:
    """Everything a case page shows, as plain values."""

    case_id: str
    agent: str
    description: str
    expectation: str
    behavior: str
    behavior_close: str
    result: str
    result_close: str
    facts: tuple[tuple[str, str], ...]  # (label, value) rows of the close and the run
    expected: tuple[EventList, ...]
    received: EventList | None
    http_request: str
    http_response: str
    wire: WireLog


def visible(text: str) -> str:
    """``text`` with control and other invisible characters as Python-style escapes.

    Invisible means Unicode category C or Z other than the space, which is exactly what
    ``str.isprintable`` refuses: most text has none, and is returned as it is.
    """
    if text.isprintable():
        return text
    return "".join(char if char.isprintable() else _escape(char) for char in text)


def _escape(char: str) -> str:
    code = ord(char)
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _bool(value: Any) -> bool | None:
    return value if isinstance(value, bool) else None


def _opcode_name(opcode: int | None) -> str:
    if opcode is None:
        return "frame"
    return f"{OPCODES.get(opcode, 'reserved')} frame ({opcode})"


def _preview(shown: Any, limit: int = PREVIEW_BYTES) -> Preview:
    """An engine's payload preview (text, or ``0x`` + hex), at most ``limit`` bytes of it."""
    if not isinstance(shown, str) or not shown:
        return Preview()
    cut = shown.endswith(_CUT)
    body = shown[: -len(_CUT)] if cut else shown
    digits = body[2:]
    if (
        body.startswith("0x")
        and len(digits) % 2 == 0
        and all(c in "0123456789abcdef" for c in digits)
    ):
        octets = [digits[i : i + 2] for i in range(0, len(digits), 2)]
        shown_octets = octets[:limit]
        return Preview(" ".join(shown_octets), "hex", len(shown_octets), cut or len(octets) > limit)
    return Preview(visible(body), "text", len(body.encode("utf-8", "replace")), cut)


def _close_detail(opcode: int | None, preview: Preview) -> str:
    """A close frame's code and reason, read from its hex preview (a cut one ends in "...")."""
    if opcode != 8 or preview.kind != "hex":
        return ""
    octets = bytes.fromhex(preview.text.replace(" ", ""))
    if len(octets) < 2:
        return ""
    reason = visible(octets[2:].decode("utf-8", "replace")) + (_CUT if preview.cut else "")
    return f"close code {int.from_bytes(octets[:2], 'big')}" + (
        f", reason “{reason}”" if reason else ""
    )


def _frame_row(
    number: int,
    time_ms: float | None,
    direction: str,
    *,
    opcode: int | None,
    fin: bool | None,
    rsv: int | None,
    length: int | None,
    mask: str | None,
    shown: Any,
    notes: Sequence[str],
) -> WireRow:
    payload = _preview(shown)
    detail = [d for d in (_close_detail(opcode, payload), *notes) if d]
    return WireRow(
        number,
        time_ms,
        direction,
        _opcode_name(opcode),
        True,
        fin,
        rsv,
        length,
        mask,
        payload,
        "; ".join(detail),
    )


def _tx_notes(chop: Any, sync: Any) -> list[str]:
    notes = []
    if _int(chop):
        notes.append(f"written in chops of {chop} bytes")
    if sync is True:
        notes.append("sent alone (sync)")
    return notes


def _octets_row(
    number: int, time_ms: float | None, direction: str, size: Any, shown: Any
) -> WireRow:
    payload = _preview("0x" + shown if isinstance(shown, str) else None, OCTETS_PREVIEW_BYTES)
    return WireRow(
        number, time_ms, direction, "TCP bytes", False, length=_int(size), payload=payload
    )


def _other_row(number: int, time_ms: float | None, what: str, detail: str) -> WireRow:
    return WireRow(number, time_ms, "", what, False, detail=visible(detail))


def _native_row(number: int, entry: Mapping[str, Any]) -> WireRow:
    t = entry.get("t")
    time_ms = t * 1000 if isinstance(t, int | float) and not isinstance(t, bool) else None
    kind = entry.get("kind")
    direction = "sent" if str(kind).startswith("tx-") else "received"
    if kind in ("tx-frame", "rx-frame"):
        return _frame_row(
            number,
            time_ms,
            direction,
            opcode=_int(entry.get("opcode")),
            fin=_bool(entry.get("fin")),
            rsv=_int(entry.get("rsv")),
            length=_int(entry.get("length")),
            mask=_text(entry.get("mask")) or None,
            shown=entry.get("payload"),
            notes=_tx_notes(entry.get("chop"), entry.get("sync")),
        )
    if kind in ("tx-octets", "rx-octets"):
        return _octets_row(number, time_ms, direction, entry.get("length"), entry.get("hex"))
    if kind == "timer":
        return _other_row(
            number, time_ms, "timer", f"{entry.get('name')} in {entry.get('delay')} s"
        )
    if kind == "fired":
        return _other_row(number, time_ms, "timer fired", str(entry.get("name")))
    if kind == "note":
        return _other_row(number, time_ms, "note", _text(entry.get("text")))
    return _other_row(number, time_ms, "note", json.dumps(entry, sort_keys=True))


# Autobahn's timer entries: what each tag means, and whether it is the timer firing.
_AUTOBAHN_TIMERS: Mapping[str, tuple[str, str]] = {
    "CT": ("timer", "continue later"),
    "CTE": ("timer fired", "continue later"),
    "KL": ("timer", "fail the connection"),
    "KLE": ("timer fired", "fail the connection"),
    "TI": ("timer", "close"),
    "TIE": ("timer fired", "close"),
}


def _pair(value: Any) -> tuple[Any, Any]:
    if isinstance(value, list) and len(value) == 2:
        return value[0], value[1]
    return None, None


def _autobahn_row(number: int, entry: Sequence[Any]) -> WireRow:
    tag = entry[0]
    fields = list(entry[1:]) + [None] * 8
    if tag in ("TF", "RF"):
        # TF: [len, text], opcode, fin, rsv, mask, repeat, chop, sync;
        # RF: [len, text], opcode, fin, rsv, masked, mask
        size, shown = _pair(fields[0])
        sent = tag == "TF"
        repeat = _int(fields[5]) if sent else None
        notes = [f"{size}-byte pattern repeated to {repeat} bytes"] if repeat else []
        return _frame_row(
            number,
            None,
            "sent" if sent else "received",
            opcode=_int(fields[1]),
            fin=_bool(fields[2]),
            rsv=_int(fields[3]),
            length=repeat or _int(size),
            mask=_text(fields[4 if sent else 5]) or None,
            shown=shown,
            notes=notes + (_tx_notes(fields[6], fields[7]) if sent else []),
        )
    if tag in ("TO", "RO"):
        size, shown = _pair(fields[0])
        return _octets_row(number, None, "sent" if tag == "TO" else "received", size, shown)
    if tag == "WLM":
        return _other_row(
            number, None, "note", "wire log " + ("resumed" if fields[0] else "paused")
        )
    if tag in _AUTOBAHN_TIMERS:
        what, name = _AUTOBAHN_TIMERS[tag]
        if what == "timer":
            name = f"{name} in {fields[0]} s" + (
                f" ({fields[1]})" if tag == "CT" and fields[1] else ""
            )
        elif tag == "CTE" and fields[0]:
            name = f"{name} ({fields[0]})"
        return _other_row(number, None, what, name)
    return _other_row(number, None, "note", json.dumps(list(entry)))


def _row(number: int, entry: Any) -> WireRow:
    if isinstance(entry, Mapping):
        return _native_row(number, entry)
    if isinstance(entry, list) and entry and isinstance(entry[0], str):
        return _autobahn_row(number, entry)
    return _other_row(number, None, "note", json.dumps(entry))


def wire_log(entries: Any, max_rows: int = MAX_ROWS, tail: int = TAIL_ROWS) -> WireLog:
    """The log's rows; past ``max_rows``, the first ``max_rows - tail`` and the last ``tail``."""
    items = entries if isinstance(entries, list) else []
    keep_tail = min(tail, max_rows // 2)
    if len(items) <= max_rows:
        head_items, tail_start = items, len(items)
    else:
        head_items, tail_start = items[: max_rows - keep_tail], len(items) - keep_tail
    head = tuple(_row(n, e) for n, e in enumerate(head_items, 1))
    tail_rows = tuple(_row(n, e) for n, e in enumerate(items[tail_start:], tail_start + 1))
    hidden = items[len(head_items) : tail_start]
    hidden_frames = sum(1 for n, e in enumerate(hidden) if _row(n, e).frame)
    return WireLog(
        head,
        tail_rows,
        len(hidden),
        hidden_frames,
        any(r.time_ms is not None for r in (*head, *tail_rows)),
        len(items),
    )


def _event(event: Any) -> str:
    """``["message", text, binary]`` -> ``text message: Hello``; other kinds likewise."""
    if not isinstance(event, list) or not event:
        return visible(json.dumps(event))
    kind, rest = str(event[0]), event[1:]
    if kind == "message" and len(rest) == 2:
        payload, binary = rest
        kind = "binary message" if binary else "text message"
        rest = [payload]
    text = " ".join(visible(v) if isinstance(v, str) else json.dumps(v) for v in rest)
    return f"{kind}: {text}" if text else kind


def _events(label: str, events: Sequence[Any]) -> EventList:
    shown = tuple(_event(e) for e in events[:MAX_EVENTS])
    return EventList(label, shown, max(0, len(events) - MAX_EVENTS))


def _either(flag: Any, yes: str, no: str) -> str:
    return yes if flag is True else no if flag is False else "unknown"


def _close_facts(report: Mapping[str, Any]) -> list[tuple[str, str]]:
    def side(by_fuzzer: Any) -> str:
        return _either(by_fuzzer, "the fuzzer", "the testee")

    def code(key: str) -> str:
        number, reason = report.get(f"{key}CloseCode"), report.get(f"{key}CloseReason")
        text = "none" if number is None else str(number)
        return text + (f" ({visible(reason)})" if isinstance(reason, str) and reason else "")

    expected = report.get("expectedClose")
    expected = expected if isinstance(expected, Mapping) else {}
    facts = [("Closing handshake started by", side(report.get("closedByMe")))]
    if "closedByMe" in expected:
        facts.append(("Expected to start it", side(expected.get("closedByMe"))))
    clean = report.get("wasClean")
    why = report.get("wasNotCleanReason")
    facts.append(
        (
            "Clean close",
            _either(clean, "yes", "no")
            + (f" ({visible(why)})" if isinstance(why, str) and why else ""),
        )
    )
    if "requireClean" in expected:
        facts.append(("Clean close required", "yes" if expected.get("requireClean") else "no"))
    facts.append(("Close code from the testee", code("remote")))
    codes = expected.get("closeCode")
    if isinstance(codes, list):
        facts.append(("Codes allowed", ", ".join(str(c) for c in codes) or "any"))
    facts.append(("Close code from the fuzzer", code("local")))
    for key, text in (
        ("failedByMe", "The fuzzer failed the connection"),
        ("droppedByMe", "The fuzzer dropped TCP"),
        ("wasOpenHandshakeTimeout", "Opening handshake timed out"),
        ("wasCloseHandshakeTimeout", "Closing handshake timed out"),
        ("wasServerConnectionDropTimeout", "Waited in vain for the testee to drop TCP"),
    ):
        if report.get(key) is True:
            facts.append((text, "yes"))
    return facts


def _run_facts(report: Mapping[str, Any]) -> list[tuple[str, str]]:
    facts = []
    for key, label in (
        ("duration", "Duration (ms)"),
        ("started", "Started"),
        ("engine", "Engine"),
        ("caseSeed", "Seed of this case"),
        ("permessageDeflate", "permessage-deflate"),
    ):
        value = report.get(key)
        if isinstance(value, str | int) and not isinstance(value, bool):
            facts.append((label, visible(str(value))))
    return facts


def read(report: Mapping[str, Any], max_rows: int = MAX_ROWS) -> CaseView:
    """The page's content from a per-case report (either engine's)."""
    case_id = _text(report.get("id"))
    expected = report.get("expected")
    expected_lists = tuple(
        _events(str(verdict), events)
        for verdict, events in (expected.items() if isinstance(expected, Mapping) else ())
        if isinstance(events, list)
    )
    received = report.get("received")
    return CaseView(
        case_id=case_id,
        agent=visible(_text(report.get("agent"))),
        description=catalog.plain_text(_text(report.get("description"))),
        expectation=catalog.plain_text(_text(report.get("expectation"))),
        behavior=_text(report.get("behavior")) or "unknown",
        behavior_close=_text(report.get("behaviorClose")) or "unknown",
        result=catalog.plain_text(_text(report.get("result"))),
        result_close=catalog.plain_text(_text(report.get("resultClose"))),
        facts=(*_close_facts(report), *_run_facts(report)),
        expected=expected_lists,
        received=_events("Received", received) if isinstance(received, list) else None,
        http_request=_http(report.get("httpRequest")),
        http_response=_http(report.get("httpResponse")),
        wire=wire_log(report.get("wirelog"), max_rows),
    )


def _http(value: Any) -> str:
    """A handshake as lines: CRLF becomes a line break, other invisible characters escapes."""
    lines = _text(value).replace("\r\n", "\n").split("\n")
    return "\n".join(visible(line) for line in lines).strip("\n")
