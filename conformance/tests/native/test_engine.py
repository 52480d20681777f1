"""The engine against real peers on loopback: scripted servers that send exactly the bytes a
test needs (violations the fuzzer's own layer must catch, stalls, deaths, refusals), and the
websockets echo testee for whole runs, a cancelled one included."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import struct
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from wsconform import results
from wsconform.native import cases, engine, frames, handshake, report, session
from wsconform.native.casedef import CaseSpec, KillAfter, SendFrame, fuzzer_closes
from wsconform.native.record import Message, Pong
from wsconform.native.verdict import OK

Script = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


async def answer_handshake(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    head = await reader.readuntil(b"\r\n\r\n")
    key = next(
        line.split(b":", 1)[1].strip()
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"sec-websocket-key:")
    )
    accept = base64.b64encode(hashlib.sha1(key + GUID).digest())
    writer.write(
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Accept: " + accept + b"\r\n\r\n"
    )


def server_frame(opcode: int, payload: bytes = b"", *, fin: bool = True, rsv: int = 0) -> bytes:
    return frames.encode(opcode, payload, fin=fin, rsv=rsv)


async def read_frame(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """One masked client frame: its opcode and unmasked payload."""
    first, second = await reader.readexactly(2)
    size = second & 0x7F
    if size == 126:
        size = struct.unpack("!H", await reader.readexactly(2))[0]
    elif size == 127:
        size = struct.unpack("!Q", await reader.readexactly(8))[0]
    key = await reader.readexactly(4)
    return first & 0x0F, frames.apply_mask(await reader.readexactly(size), key)


async def play_against(
    script: Script, spec: CaseSpec
) -> tuple[engine.CaseOutcome, dict[str, object]]:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await script(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        return await engine.play(spec, handshake.target(f"ws://127.0.0.1:{port}"), 7, "t")


def play(
    script: Script, spec: CaseSpec | None = None
) -> tuple[engine.CaseOutcome, dict[str, object]]:
    return asyncio.run(play_against(script, spec or cases.get("1.1.2")))


ECHO_SPEC = CaseSpec(
    "1.1.2",
    (SendFrame(1, b"*" * 125), KillAfter(1)),
    {OK: (Message(b"*" * 125, False),)},
    fuzzer_closes(),
)


def sends_then_closes(*raw: bytes) -> Script:
    """After the handshake: read our first frame, send ``raw``, answer our Close, drop TCP."""

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await answer_handshake(reader, writer)
        await read_frame(reader)
        writer.write(b"".join(raw))
        while True:
            opcode, payload = await read_frame(reader)
            if opcode == 8:
                writer.write(server_frame(8, payload[:2]))
                await writer.drain()
                return

    return script


def test_a_conformant_exchange_is_ok_ok_and_the_report_logs_every_masked_frame() -> None:
    outcome, report = play(sends_then_closes(server_frame(1, b"*" * 125)), ECHO_SPEC)
    assert (outcome.verdict.behavior, outcome.verdict.behavior_close) == ("OK", "OK")
    sent = [e for e in report["wirelog"] if e["kind"] == "tx-frame"]  # type: ignore[union-attr]
    assert [e["opcode"] for e in sent] == [1, 8]
    assert all(e["mask"] and e["mask"] != "00000000" for e in sent)
    assert report["seed"] == 7
    assert report["received"] == [["message", "*" * 64 + " ...", False]]


def test_a_masked_server_frame_makes_the_fuzzer_fail_the_connection() -> None:
    masked = frames.encode(1, b"*" * 125, mask=b"\x01\x02\x03\x04")
    outcome, report = play(sends_then_closes(masked), ECHO_SPEC)
    assert report["failedByMe"] is True and report["closedByMe"] is True
    assert report["localCloseCode"] == 1002
    assert outcome.verdict.behavior == "FAILED"  # a message after failing is not delivered


def test_rsv_bits_and_reserved_opcodes_from_the_testee_are_violations() -> None:
    for bad in (server_frame(1, b"x", rsv=4), server_frame(3), server_frame(11)):
        _, report = play(sends_then_closes(bad), ECHO_SPEC)
        assert (report["failedByMe"], report["localCloseCode"]) == (True, 1002), bad


def test_a_fragmented_or_oversized_control_frame_is_a_violation() -> None:
    for bad in (server_frame(9, b"p", fin=False), server_frame(10, b"x" * 126)):
        _, report = play(sends_then_closes(bad), ECHO_SPEC)
        assert (report["failedByMe"], report["localCloseCode"]) == (True, 1002), bad


def test_invalid_utf8_text_fails_with_1007_and_then_drops_tcp() -> None:
    _, report = play(sends_then_closes(server_frame(1, b"\xce\xba\xed\xa0\x80")), ECHO_SPEC)
    assert report["localCloseCode"] == 1007
    # The fuzzer checks again at the end of the message and fails again while closing: a drop.
    assert report["droppedByMe"] is True


def test_a_close_with_an_invalid_code_is_answered_with_1002() -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await answer_handshake(reader, writer)
        await read_frame(reader)
        writer.write(server_frame(8, struct.pack("!H", 1005)))
        assert (await read_frame(reader))[0] == 8

    outcome, report = play(script, ECHO_SPEC)
    assert report["localCloseCode"] == 1002 and report["remoteCloseCode"] == 1005
    assert outcome.verdict.behavior_close == "WRONG CODE"


def test_a_testee_that_never_answers_the_handshake_fails_after_5_seconds() -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()

    outcome, report = play(script)
    assert (outcome.verdict.behavior, outcome.verdict.behavior_close) == ("FAILED", "FAILED")
    assert outcome.verdict.result_close == "The WebSocket opening handshake was never completed!"
    assert report["wasOpenHandshakeTimeout"] is True and report["expected"] == {}


def test_a_refused_upgrade_fails_the_case() -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
        await reader.read()

    outcome, report = play(script)
    assert outcome.verdict.behavior_close == "FAILED"
    assert report["wasNotCleanReason"] == "WebSocket connection upgrade failed (400)"


def test_a_testee_that_dies_mid_case_fails_it_as_closed_by_the_wrong_side() -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await answer_handshake(reader, writer)
        await read_frame(reader)

    outcome, report = play(script)
    assert (outcome.verdict.behavior, outcome.verdict.behavior_close) == ("FAILED", "FAILED")
    assert report["wasClean"] is False


def test_a_testee_that_keeps_tcp_open_after_the_closing_handshake_is_failed_by_client() -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await answer_handshake(reader, writer)
        _, payload = await read_frame(reader)
        writer.write(server_frame(1, payload))
        await read_frame(reader)
        writer.write(server_frame(8, struct.pack("!H", 1000)))
        await reader.read()  # never closes TCP

    outcome, report = play(script)
    # The case's own 1 s timer (armed at open) fires before the 1 s wait for the server's
    # drop (armed at the close): failing while closing drops TCP, the close stays clean.
    assert report["droppedByMe"] is True and report["wasClean"] is True
    assert report["wasServerConnectionDropTimeout"] is False
    assert (outcome.verdict.behavior, outcome.verdict.behavior_close) == ("OK", "FAILED BY CLIENT")


def test_a_stalled_testee_is_failed_by_the_case_timer_then_by_the_close_timer() -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await answer_handshake(reader, writer)
        await reader.read()  # reads everything, answers nothing

    outcome, report = play(script)
    assert report["localCloseCode"] == 1001  # killAfter(1): "Going Away"
    assert report["wasCloseHandshakeTimeout"] is True
    assert (outcome.verdict.behavior, outcome.verdict.behavior_close) == ("FAILED", "UNCLEAN")


def test_a_testee_that_closes_and_then_holds_tcp_is_dropped_by_the_guard_after_its_events(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Nothing of the fuzzer's would ever end this case: its reply to the testee's Close arms no
    # timer. Only the guard does, counted from the last event, however late that came.
    monkeypatch.setattr(session, "GUARD", 0.2)

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await answer_handshake(reader, writer)
        writer.write(b"".join(server_frame(10, b"%d" % n) for n in range(3)))
        writer.write(server_frame(8, struct.pack("!H", 1000)))
        await reader.read()  # holds TCP open until we drop it

    never_matched = {OK: (Pong(b"other"),)}  # so the fuzzer does not start a close itself
    spec = CaseSpec("1.1.1", (), never_matched, fuzzer_closes())
    _, report = asyncio.run(asyncio.wait_for(play_against(script, spec), 30))
    assert report["received"] == [["pong", "0"], ["pong", "1"], ["pong", "2"]]
    notes = [e["text"] for e in report["wirelog"] if e["kind"] == "note"]  # type: ignore[union-attr]
    assert sum("(guard)" in note for note in notes) == 1
    assert report["droppedByMe"] is True


def test_masking_keys_are_never_zero_and_replay_from_the_seed() -> None:
    first, again = frames.MaskKeys("1:1.1.1"), frames.MaskKeys("1:1.1.1")
    keys = [first.key() for _ in range(2000)]
    assert keys == [again.key() for _ in range(2000)]
    assert b"\0\0\0\0" not in keys


def test_frame_lengths_use_the_shortest_encoding() -> None:
    assert frames.encode(2, b"x" * 125)[1] == 125
    assert frames.encode(2, b"x" * 126)[1:4] == b"\x7e\x00\x7e"
    assert frames.encode(2, b"x" * 65536)[1:10] == b"\x7f" + (65536).to_bytes(8, "big")


def test_a_stopped_run_keeps_the_finished_cases(tmp_path: Path, echo_cmd: str) -> None:
    from wsconform import testee

    # 5.5 (chopped, no fault in it: no race) plays on the other loop.
    ids = ["1.1.1", "1.1.2", "5.5", "2.1", "2.2"]
    stop = engine.Stop()
    finished: list[str] = []

    def progress(event: engine.CaseEvent) -> None:
        if event.kind == "finished":
            finished.append(event.case_id)
            if len(finished) == 3:
                stop.request()  # told while the fourth case's handshake is under way

    with testee.start(echo_cmd, tmp_path / "logs") as server:
        server.wait_ready()
        with pytest.raises(asyncio.CancelledError):
            engine.run(server.url, "ws", ids, tmp_path / "run", progress=progress, stop=stop)
    run = results.load(tmp_path / "run")
    assert sorted(run.cases) == sorted(finished) == ["1.1.1", "1.1.2", "5.5"]
    assert all(c.behavior == "OK" and c.result for c in run.cases.values())
    index = json.loads((tmp_path / "run" / "index.json").read_text())
    assert set(index["ws"]) == set(run.cases)


def test_each_case_is_told_finished_with_its_report_on_disk_and_in_order(
    tmp_path: Path, echo_cmd: str
) -> None:
    """A report is written while the next case's handshake is answered; the events still go
    started, finished, started, finished..., each finished case's report already written."""
    from wsconform import testee

    ids = ["1.1.1", "2.1", "5.1"]
    seen: list[tuple[str, str, bool]] = []

    def progress(event: engine.CaseEvent) -> None:
        written = (tmp_path / "run" / report.report_filename("ws", event.case_id)).is_file()
        seen.append((event.kind, event.case_id, written))

    with testee.start(echo_cmd, tmp_path / "logs") as server:
        server.wait_ready()
        engine.run(server.url, "ws", ids, tmp_path / "run", progress=progress)
    assert seen == [
        (kind, case_id, kind == "finished") for case_id in ids for kind in ("started", "finished")
    ]


def test_a_run_stops_where_the_testee_refuses_connections(tmp_path: Path) -> None:
    from wsconform import testee

    events: list[engine.CaseEvent] = []
    port = testee.free_port()
    engine.run(
        f"ws://127.0.0.1:{port}", "gone", ["1.1.1", "1.1.2"], tmp_path, progress=events.append
    )
    assert [e.kind for e in events] == ["started", "unreachable"]
    assert json.loads((tmp_path / "index.json").read_text()) == {"gone": {}}
