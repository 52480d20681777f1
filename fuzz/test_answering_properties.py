"""The server's answering read against the reference path: the same session, fed the same
reads, does the same with its read compiled (``rfc6455._speedups.server_read``), with the
Python read's ``Connection.receive_answering`` (``_answer_reads``), and with every event
through ``Shell._process`` (the harness: ``sessions``).

The same hook calls in the same order, the same bytes written (replies, Pongs, the Close and
its code: which error wins when a frame breaks several rules), the same close code, the same
hook failures logged, the same exception escaping a read, whatever the handler does in its
``on_message``: reply or not, with any kind of reply, raise, send or close by itself, or
return an awaitable. Runs on the codec in use (compiled, or pure Python with
``RFC6455_NO_SPEEDUPS=1``, where the session's read is the Python one), so both twins of
``answer_messages`` and the compiled read are held to the reference.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from sessions import ACTIONS, run_session
from strategies import (
    chunked,
    doubly_broken_text,
    hostile_streams,
    whole_message_runs,
    whole_messages,
)


@st.composite
def client_streams(draw: st.DrawFn) -> bytes:
    """What a client sends: mostly whole messages (so the pass answers several per read),
    then anything (control frames, fragments, broken frames, text broken twice)."""
    stream = draw(whole_messages())
    tail = st.one_of(
        st.just(b""),
        whole_message_runs(masked=True),
        hostile_streams(masked=True),
        doubly_broken_text(masked=True),
    )
    return stream + draw(tail)


@settings(max_examples=300)
@given(
    stream=client_streams(),
    data=st.data(),
    actions=st.lists(st.sampled_from(ACTIONS), min_size=1, max_size=6),
    limit=st.one_of(st.none(), st.integers(0, 200)),
)
def test_server_answers_reads_as_the_reference_path_does(
    stream: bytes, data: st.DataObject, actions: list[str], limit: int | None
) -> None:
    chunks = data.draw(st.one_of(st.just([stream]), chunked(stream)), label="chunks")
    chunks = [chunk for chunk in chunks if chunk]
    answered = run_session("compiled", chunks, actions, limit)
    assert answered == run_session("python", chunks, actions, limit)
    assert answered == run_session("reference", chunks, actions, limit)


def test_a_read_whose_hook_fails_the_connection_still_hands_out_its_messages_first() -> None:
    # The reference parsed the whole read before any hook ran: the messages after the one
    # whose hook failed the connection (and the one whose ``send`` then raised) are still
    # handed out, before ``on_close``; the answering pass must keep them, in that order.
    empty = b"\x80\x00\x00\x00\x00"  # masked with a zero key, no payload
    stream = b"\x82" + empty + b"\x82" + empty + b"\x81" + empty + b"\x82" + empty
    answered = run_session("compiled", [stream], ["send", "fail"], None)
    assert answered == run_session("python", [stream], ["send", "fail"], None)
    assert answered == run_session("reference", [stream], ["send", "fail"], None)
    assert [call for call, _ in answered[0]] == ["message"] * 4 + ["close"]
