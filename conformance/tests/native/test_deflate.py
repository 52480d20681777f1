"""permessage-deflate in the native engine: the fuzzer's negotiation rules, its framing of
compressed messages, and cases 12.x/13.x against real testees on loopback (the reference, and
a deflate-faulty echo testee whose window overrun, ignored no_context_takeover, 8-bit window and
missing extension must each end as they end with Autobahn)."""

from __future__ import annotations

import json
import shlex
import sys
import zlib
from pathlib import Path
from typing import Any

import pytest
from deflate_window import fuzzer_messages, inflate_stepwise

from wsconform import testee
from wsconform.native import cases, deflate, engine, frames, handshake, loop, testdata
from wsconform.native.cases.deflate import OFFER_SETS

TESTEES = Path(__file__).resolve().parents[2] / "testees"
PYTHON = shlex.quote(sys.executable)
REFERENCE = f"{PYTHON} -m rfc6455 serve --host 127.0.0.1 --port {{port}}"


def faulty(mode: str) -> str:
    return f"{PYTHON} {shlex.quote(str(TESTEES / 'deflate_faulty_echo.py'))} {{port}} {mode}"


def run_cases(command: str, case_ids: list[str], tmp_path: Path) -> dict[str, dict[str, Any]]:
    """Each case's report, from a native run against a fresh testee started from ``command``."""
    with testee.start(command, tmp_path / "logs") as server:
        server.wait_ready()
        engine.run(server.url, "t", case_ids, tmp_path / "run", seed=3)
    index = json.loads((tmp_path / "run" / "index.json").read_text("utf-8"))["t"]
    return {
        case_id: json.loads((tmp_path / "run" / entry["reportfile"]).read_text("utf-8"))
        for case_id, entry in index.items()
    }


def verdict(report: dict[str, Any]) -> tuple[str, str]:
    return report["behavior"], report["behaviorClose"]


# ---------------------------------------------------------------------- negotiation


def test_the_offers_are_written_as_the_fuzzer_writes_them() -> None:
    assert deflate.offers_header(OFFER_SETS[6]) == (
        "permessage-deflate; client_no_context_takeover; client_max_window_bits; "
        "server_no_context_takeover; server_max_window_bits=9, "
        "permessage-deflate; client_no_context_takeover; client_max_window_bits; "
        "server_no_context_takeover, "
        "permessage-deflate; client_no_context_takeover; client_max_window_bits"
    )
    request, _ = handshake.request(handshake.target("ws://h:1/"), b"k" * 16, OFFER_SETS[2])
    assert b"\r\nSec-WebSocket-Extensions: permessage-deflate; client_no_context_takeover; " in (
        request
    )
    assert cases.get("1.1.1").offers == () and cases.get("13.3.1").offers == OFFER_SETS[2]


def test_the_answer_settles_the_windows_and_the_context_takeover_of_both_sides() -> None:
    refusal, agreed = deflate.response_refusal(
        'permessage-deflate; server_no_context_takeover; server_max_window_bits="9"', True
    )
    assert refusal is None
    assert agreed == deflate.Agreed(server_no_context_takeover=True, server_max_window_bits=9)
    assert deflate.response_refusal("", True) == (None, None)


@pytest.mark.parametrize(
    ("answer", "refusal"),
    [
        (
            "permessage-deflate; server_max_window_bits=16",
            "illegal extension parameter value '16' for parameter 'server_max_window_bits' "
            "of extension 'permessage-deflate'",
        ),
        (
            "permessage-deflate; client_max_window_bits",
            "illegal extension parameter value '1' for parameter 'client_max_window_bits' "
            "of extension 'permessage-deflate'",
        ),
        (
            "permessage-deflate; server_no_context_takeover=1",
            "illegal extension parameter value '1' for parameter 'server_no_context_takeover' "
            "of extension 'permessage-deflate'",
        ),
        (
            "permessage-deflate; mem_level=8",
            "illegal extension parameter 'mem_level' for extension 'permessage-deflate'",
        ),
        (
            "permessage-deflate; server_max_window_bits=9; server_max_window_bits=10",
            "multiple occurrence of extension parameter 'server_max_window_bits' "
            "for extension 'permessage-deflate'",
        ),
        (
            "permessage-deflate, permessage-deflate",
            "multiple occurrence of a permessage-compress extension",
        ),
        (
            "x-webkit-deflate-frame",
            "server wants to use extension 'x-webkit-deflate-frame' we did not request, "
            "haven't implemented or did not enable",
        ),
    ],
)
def test_the_fuzzer_refuses_answers_outside_its_rules(answer: str, refusal: str) -> None:
    assert deflate.response_refusal(answer, True) == (refusal, None)


def test_deflate_chosen_without_an_offer_is_denied() -> None:
    assert deflate.response_refusal("permessage-deflate", False) == (
        "WebSocket permessage-compress extension response from server denied by client",
        None,
    )


def test_an_8_bit_client_window_is_a_compressor_the_fuzzer_cannot_create() -> None:
    codec = deflate.MessageDeflate(deflate.Agreed(client_max_window_bits=8))
    assert codec.compressor_refused()
    with pytest.raises(deflate.CompressorRefused):
        codec.compress(b"x")


def test_no_context_takeover_gives_each_message_a_fresh_compressor() -> None:
    message = b"all work and no play " * 20
    fresh = deflate.MessageDeflate(deflate.Agreed(client_no_context_takeover=True))
    kept = deflate.MessageDeflate(deflate.Agreed())
    assert fresh.compress(message) == fresh.compress(message)
    first = kept.compress(message)
    assert len(kept.compress(message)) < len(first)  # the second refers back to the first


def _engine_stream(bits: int, messages: list[bytes], level: int = deflate.LEVEL) -> bytes:
    """``messages`` as the engine sends them with a ``bits`` client window and context
    takeover, each with its stripped tail restored: the stream the testee inflates."""
    codec = deflate.MessageDeflate(deflate.Agreed(client_max_window_bits=bits), level)
    return b"".join(codec.compress(message) + b"\x00\x00\xff\xff" for message in messages)


@pytest.mark.parametrize("level", [deflate.LEVEL, 1])  # 1: the barely compressible data sets
@pytest.mark.parametrize("bits", range(9, 16))
def test_what_we_send_inflates_with_exactly_the_window_the_testee_allows(
    bits: int, level: int
) -> None:
    # A testee that allocated the window it asked for must be able to inflate every message
    # (zlib-ng's matches stay within it); checked on the fuzzer's own data.
    messages = fuzzer_messages()
    stream = _engine_stream(bits, messages, level)
    assert inflate_stepwise(stream, -bits) == b"".join(messages)
    if bits < 15:  # the check fails on this data with a window one bit larger
        with pytest.raises(zlib.error, match="too far back"):
            inflate_stepwise(_engine_stream(bits + 1, messages, level), -bits)


# ---------------------------------------------------------------------- framing


def test_an_exact_multiple_of_the_fragment_size_ends_with_an_empty_frame() -> None:
    assert frames.fragment_bounds(512, 256) == [(0, 256), (256, 512), (512, 512)]
    assert frames.fragment_bounds(300, 256) == [(0, 256), (256, 300)]
    assert frames.fragment_bounds(256, 256) == [(0, 256)]
    assert frames.fragment_bounds(1000, 0) == [(0, 1000)]


def test_a_message_masked_in_one_pass_equals_its_frames_masked_one_by_one() -> None:
    payload = bytes(range(256)) * 5
    bounds = frames.fragment_bounds(len(payload), 300)
    keys = frames.MaskKeys(1).keys(len(bounds))
    one_by_one = b"".join(
        frames.encode(
            1 if i == 0 else 0,
            payload[start:end],
            fin=i == len(bounds) - 1,
            rsv=4 if i == 0 else 0,
            mask=key,
        )
        for i, ((start, end), key) in enumerate(zip(bounds, keys, strict=True))
    )
    assert frames.encode_message(1, payload, 300, b"".join(keys), rsv=4) == one_by_one


# ---------------------------------------------------------------------- against real testees


def test_the_reference_passes_text_binary_and_fragmented_cases(tmp_path: Path) -> None:
    reports = run_cases(REFERENCE, ["12.2.11", "12.4.2", "13.5.1", "13.7.2"], tmp_path)
    assert {c: verdict(r) for c, r in reports.items()} == dict.fromkeys(reports, ("OK", "OK"))
    assert reports["12.4.2"]["result"] == "Ok, received all echo'ed messages in time."
    assert reports["13.5.1"]["permessageDeflate"] == (
        "server_no_context_takeover=True, client_no_context_takeover=True, "
        "server_max_window_bits=9, client_max_window_bits=15"
    )
    data = reports["12.2.11"]["testData"]
    assert data["file"] == "lena512.bmp" and len(data["sha256"]) == 64
    assert reports["12.2.11"]["txFrameStats"]["0"] > 1000  # 8 KiB messages in 256-byte frames


@pytest.mark.parametrize("event_loop", ["uvloop", "asyncio"])
def test_a_testee_that_overruns_the_agreed_window_fails_as_with_autobahn(
    tmp_path: Path, event_loop: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # On both loops: uvloop reads up to 256 KiB at once, and the engine must still inflate
    # 64 KiB at a time, as the fuzzer's reads split a message.
    monkeypatch.setenv(loop.ENV, event_loop)
    reports = run_cases(faulty("overrun"), ["13.1.1", "13.3.1", "13.5.7", "13.5.8"], tmp_path)
    assert verdict(reports["13.1.1"]) == ("OK", "OK")  # a 15-bit window: nothing to overrun
    # A fresh context per message: only where the fuzzer's zlib calls split a message (its
    # first call inflates 16 KiB) can a reference reach past the window: 16 KiB messages
    # pass, 32 KiB ones fail, with Autobahn as here.
    assert verdict(reports["13.5.7"]) == ("OK", "OK")
    assert verdict(reports["13.5.8"]) == ("FAILED", "FAILED")
    broken = reports["13.3.1"]
    assert verdict(broken) == ("FAILED", "FAILED")
    assert broken["result"].startswith("Case did not finish within 60 seconds.")
    assert "9-bit window" in broken["result"] and "too far back" in broken["result"]
    assert (broken["closedByMe"], broken["droppedByMe"], broken["remoteCloseCode"]) == (
        False,
        False,
        None,
    )


def test_a_testee_that_ignores_no_context_takeover_fails_as_with_autobahn(
    tmp_path: Path,
) -> None:
    reports = run_cases(faulty("takeover"), ["13.1.1", "13.2.1"], tmp_path)
    assert verdict(reports["13.1.1"]) == ("OK", "OK")  # takeover allowed there
    assert verdict(reports["13.2.1"]) == ("FAILED", "FAILED")
    assert "too far back" in reports["13.2.1"]["result"]


def test_an_8_bit_window_request_fails_the_case_as_the_fuzzer_fails_itself(
    tmp_path: Path,
) -> None:
    report = run_cases(faulty("window8"), ["12.1.1"], tmp_path)["12.1.1"]
    assert verdict(report) == ("FAILED", "FAILED")
    assert "cannot create a compressor with the 8-bit window" in report["result"]
    assert report["closedByMe"] is False and report["wasClean"] is False


def test_a_testee_without_the_extension_is_unimplemented(tmp_path: Path) -> None:
    reports = run_cases(faulty("plain"), ["12.1.1", "13.7.18"], tmp_path)
    for report in reports.values():
        assert verdict(report) == ("UNIMPLEMENTED", "OK")
        assert report["result"] == "Actual events differ from any expected."
        assert report["remoteCloseCode"] == 1000 and report["permessageDeflate"] is None


# ---------------------------------------------------------------------- test data


def _forget_loaded_data() -> None:
    testdata.load.cache_clear()
    testdata._fetch_missing.cache_clear()


def test_the_test_data_is_verified_and_a_corrupt_copy_is_replaced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    originals = {d.filename: testdata.load(d.name) for d in testdata.DATA_SETS}
    fuzzer = tmp_path / "wsconform/autobahn-x/lib/python2.7/site-packages/autobahntestsuite"
    (fuzzer / "testdata").mkdir(parents=True)
    for filename, content in originals.items():
        (fuzzer / "testdata" / filename).write_bytes(content)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    _forget_loaded_data()
    try:
        assert testdata.load("lena512") == originals["lena512.bmp"]
        assert testdata.origin("lena512")["fetchedFrom"] == "the provisioned fuzzer"
        cached = testdata.cache_dir() / "lena512.bmp"
        assert cached.parent.is_relative_to(tmp_path)
        cached.write_bytes(b"BM" + bytes(100))  # a damaged copy is never used
        _forget_loaded_data()
        assert testdata.load("lena512") == originals["lena512.bmp"]
        assert cached.read_bytes() == originals["lena512.bmp"]
    finally:
        _forget_loaded_data()
