"""Each verdict rule and each close rule, in the fuzzer's order, on plain data."""

from __future__ import annotations

from wsconform.native import verdict
from wsconform.native.record import Message
from wsconform.native.verdict import EchoCheck, EchoTally, Observed, Rule, decide

HELLO = Message(b"Hello", False)


def seen(
    received: tuple[object, ...] = (),
    *,
    was_open: bool = True,
    closed_by_me: bool = True,
    was_clean: bool = True,
    dropped_by_me: bool = False,
    code: int | None = 1000,
    tx: dict[int, int] | None = None,
    echoes: tuple[tuple[bool, int], ...] = (),
) -> Observed:
    return Observed(
        received, was_open, closed_by_me, was_clean, dropped_by_me, code, tx or {}, echoes
    )


def judge(
    observed: Observed,
    expected: dict[str, tuple[object, ...]] | None = None,
    *,
    by_fuzzer: bool = True,
    codes: tuple[int, ...] = (1000,),
    clean: bool = True,
    fatal: bool = False,
    rule: Rule | EchoCheck = Rule.PLAIN,
    auto: tuple[int, int] = (0, 0),
) -> verdict.Verdict:
    return decide(
        expected if expected is not None else {verdict.OK: (HELLO,)},
        by_fuzzer,
        codes,
        clean,
        fatal,
        rule,
        observed,
        auto_fragment=auto,
    )


def test_matching_events_pass_with_the_fuzzers_result_text() -> None:
    result = judge(seen((HELLO,)))
    assert (result.behavior, result.behavior_close) == ("OK", "OK")
    assert result.result == "Actual events match at least one expected."
    assert result.result_close == "Connection was properly closed"


def test_other_events_fail() -> None:
    result = judge(seen(()))
    assert result.behavior == "FAILED"
    assert result.result == "Actual events differ from any expected."


def test_identical_lists_resolve_in_the_fuzzers_dict_order() -> None:
    both = {verdict.OK: (HELLO,), verdict.NON_STRICT: (HELLO,)}
    assert judge(seen((HELLO,)), both).behavior == "NON-STRICT"
    assert judge(seen(()), {verdict.OK: (HELLO,), verdict.NON_STRICT: ()}).behavior == (
        "NON-STRICT"
    )


def test_a_handshake_that_never_completed_fails_both_even_if_no_events_were_expected() -> None:
    result = judge(seen(was_open=False, closed_by_me=False, code=None), {verdict.OK: ()})
    assert (result.behavior, result.behavior_close) == ("FAILED", "FAILED")
    assert result.result_close == "The WebSocket opening handshake was never completed!"


def test_close_rules_apply_in_order_wrong_side_first() -> None:
    everything_wrong = seen((HELLO,), closed_by_me=False, was_clean=False, code=1011)
    assert judge(everything_wrong).behavior_close == "FAILED"
    assert judge(everything_wrong).result_close == (
        "The connection was failed by the wrong endpoint"
    )


def test_unclean_when_clean_was_required_comes_before_the_code() -> None:
    result = judge(seen((HELLO,), was_clean=False, code=1011, dropped_by_me=True))
    assert result.behavior_close == "UNCLEAN"
    assert judge(seen((HELLO,), was_clean=False), clean=False).behavior_close == "OK"


def test_a_code_not_allowed_is_wrong_code_and_an_empty_close_passes() -> None:
    wrong = judge(seen((HELLO,), code=1001), codes=(1000, 1000))
    assert wrong.behavior_close == "WRONG CODE"
    assert wrong.result_close == "The close code should have been 1000,1000 or empty"
    assert judge(seen((HELLO,), code=None)).behavior_close == "OK"


def test_dropping_tcp_ourselves_is_failed_by_client() -> None:
    result = judge(seen((HELLO,), dropped_by_me=True))
    assert result.behavior_close == "FAILED BY CLIENT"
    assert result.result_close == "It is preferred that the server close the TCP connection"


def test_wrong_side_closing_is_fatal_to_behavior_only_where_declared() -> None:
    testee_should_fail = {"by_fuzzer": False, "codes": (1007,), "clean": False}
    we_closed = seen((), closed_by_me=True, code=1000)
    assert judge(we_closed, {verdict.OK: ()}, **testee_should_fail).behavior == "OK"
    fatal = judge(we_closed, {verdict.OK: ()}, fatal=True, **testee_should_fail)
    assert (fatal.behavior, fatal.behavior_close) == ("FAILED", "FAILED")


def test_close_cases_turn_wrong_code_into_a_failed_behavior() -> None:
    result = judge(seen((), code=1001), {verdict.OK: ()}, rule=Rule.WRONG_CODE_FAILS)
    assert (result.behavior, result.behavior_close) == ("FAILED", "WRONG CODE")
    assert result.result == result.result_close
    assert judge(seen(()), {verdict.OK: ()}, rule=Rule.WRONG_CODE_FAILS).behavior == "OK"


def test_informational_cases_are_informational_whatever_happens() -> None:
    result = judge(seen(was_open=True, closed_by_me=False), rule=Rule.INFORMATIONAL)
    assert (result.behavior, result.behavior_close) == ("INFORMATIONAL", "INFORMATIONAL")
    assert result.result == "Actual events are undefined by the spec."


def test_message_before_close_says_which_came_first() -> None:
    expected = {verdict.OK: (HELLO,), verdict.NON_STRICT: ()}
    first = judge(seen((HELLO,)), expected, rule=Rule.INFORMATIONAL_ORDER)
    assert (first.behavior, first.result) == (
        "INFORMATIONAL",
        "Text message was processed before close.",
    )
    closed = judge(seen(()), expected, rule=Rule.INFORMATIONAL_ORDER)
    assert closed.result == "Close was processed before text message could be returned."
    other = judge(seen((HELLO, HELLO)), expected, rule=Rule.INFORMATIONAL_ORDER)
    assert (other.behavior, other.result) == (
        "INFORMATIONAL",
        "Actual events differ from any expected.",
    )


def test_auto_fragmentation_counts_the_frames_sent() -> None:
    good = seen((HELLO,), tx={1: 1, 0: 50, 8: 1})
    assert judge(good, rule=Rule.FRAME_COUNT, auto=(65536, 1300)).behavior == "OK"
    bad = judge(seen((HELLO,), tx={1: 1, 0: 49}), rule=Rule.FRAME_COUNT, auto=(65536, 1300))
    assert bad.behavior == "FAILED"
    assert bad.result == (
        "Frames transmitted {0: 49, 1: 1} does not match what we expected {0: 50, 1: 1}."
    )
    never = judge(seen(was_open=False), rule=Rule.FRAME_COUNT, auto=(65536, 1300))
    assert never.result == "WebSocket connection was never open"


TEXT_64K = EchoCheck(binary=False, length=65536, limit=10)
BINARY_4M_FRAGMENTED = EchoCheck(binary=True, length=4 * 2**20, limit=100, says_got_binary=True)
ROUND_TRIPS = EchoCheck(binary=True, length=16, limit=60, round_trips=1000)


def judge_echoes(
    check: EchoCheck,
    *echoes: tuple[bool, int],
    was_open: bool = True,
    closed_by_me: bool = True,
    code: int | None = 1000,
) -> verdict.Verdict:
    observed = seen(echoes=echoes, was_open=was_open, closed_by_me=closed_by_me, code=code)
    return judge(observed, {}, rule=check)


def test_a_9x_echo_of_the_right_type_and_length_is_ok_with_its_length_in_the_result() -> None:
    result = judge_echoes(TEXT_64K, (False, 65536))
    assert (result.behavior, result.behavior_close) == ("OK", "OK")
    assert result.result == "Received text message of length 65536."


def test_a_9x_case_with_no_echo_fails_naming_its_own_time_limit() -> None:
    result = judge_echoes(TEXT_64K)
    assert result.behavior == "FAILED"
    assert result.result == "Did not receive message within 10 seconds."
    rounds = judge_echoes(ROUND_TRIPS, *[(True, 16)] * 999)
    assert (rounds.behavior, rounds.result) == ("FAILED", "Case did not finish within 60 seconds.")


def test_a_9x_echo_of_the_wrong_type_or_length_fails_with_the_fuzzers_texts() -> None:
    assert judge_echoes(TEXT_64K, (True, 65536)).result == (
        "Expected text message with payload, but got binary."
    )
    short = judge_echoes(TEXT_64K, (False, 3))
    assert (short.behavior, short.result) == (
        "FAILED",
        "Expected text message with payload of length 65536, but got 3.",
    )
    # 9.4.x name the wrong type "binary" whatever arrived (the fuzzer's own text).
    assert judge_echoes(BINARY_4M_FRAGMENTED, (False, 4 * 2**20)).result == (
        "Expected binary message with payload, but got binary."
    )


def test_a_wrong_9x_echo_after_a_right_one_changes_only_the_text() -> None:
    result = judge_echoes(TEXT_64K, (False, 65536), (True, 1))
    assert (result.behavior, result.result) == (
        "OK",
        "Expected text message with payload, but got binary.",
    )


def test_round_trips_send_again_until_the_last_echo_then_pass() -> None:
    tally = EchoTally(ROUND_TRIPS)
    again = [tally.add(True, 16) for _ in range(1000)]
    assert again == [True] * 999 + [False]
    assert (tally.behavior, tally.result) == ("OK", "Ok, received all echo'ed messages in time.")
    assert judge_echoes(ROUND_TRIPS, *[(True, 16)] * 1000).behavior == "OK"


def test_a_wrong_round_trip_echo_fails_and_stops() -> None:
    tally = EchoTally(ROUND_TRIPS)
    assert tally.add(True, 16) is True
    assert tally.add(False, 16) is False
    assert (tally.behavior, tally.result) == (
        "FAILED",
        "Echo'ed message type or length differs from what I sent "
        "(got binary = False, payload length = 16).",
    )


def test_9x_close_rules_still_apply_and_a_closed_handshake_fails_as_undecided() -> None:
    wrong_side = judge_echoes(TEXT_64K, closed_by_me=False, code=1009)
    assert (wrong_side.behavior, wrong_side.behavior_close) == ("FAILED", "FAILED")
    never = judge_echoes(TEXT_64K, was_open=False, closed_by_me=False, code=None)
    assert (never.behavior, never.result) == ("FAILED", "Actual events differ from any expected.")
