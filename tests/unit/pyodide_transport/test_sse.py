from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pyodide_transport.errors import LocalProtocolError, MessageTooLargeError
from pyodide_transport.sse import SSEDecoder, SSEEvent, encode_sse_event


def decode(*chunks: bytes, **kwargs: int) -> list[SSEEvent]:
    decoder = SSEDecoder(**kwargs)  # type: ignore[arg-type]
    events: list[SSEEvent] = []
    for chunk in chunks:
        events += decoder.feed(chunk)
    return events + decoder.end()


def datas(*chunks: bytes) -> list[str]:
    return [e.data for e in decode(*chunks)]


# --- line endings -------------------------------------------------------------------


@pytest.mark.parametrize("eol", [b"\n", b"\r", b"\r\n"])
def test_every_line_ending_works(eol: bytes) -> None:
    stream = b"data: a" + eol + b"data: b" + eol + eol + b"data: c" + eol + eol
    assert datas(stream) == ["a\nb", "c"]


def test_mixed_line_endings() -> None:
    assert datas(b"data: a\rdata: b\r\ndata: c\n\r\n") == ["a\nb\nc"]


def test_cr_at_chunk_end_and_lf_at_next_start_is_one_line_end() -> None:
    # If CR and LF were seen as two line ends, "data: a" would be dispatched early and "b" separately.
    assert datas(b"data: a\r", b"\ndata: b\r", b"\n\r", b"\n") == ["a\nb"]


def test_cr_at_chunk_end_then_other_text() -> None:
    assert datas(b"data: a\r", b"data: b\r", b"\r") == ["a\nb"]


def test_cr_then_empty_chunk_then_lf() -> None:
    assert datas(b"data: a\r", b"", b"\n", b"\n") == ["a"]


def test_lone_cr_then_cr_is_a_blank_line() -> None:
    assert datas(b"data: a\r", b"\r") == ["a"]


# --- UTF-8 and BOM ------------------------------------------------------------------


def test_utf8_split_inside_a_character() -> None:
    raw = "data: héllo €𝄞\n\n".encode()
    chunks = [raw[i : i + 1] for i in range(len(raw))]
    assert datas(*chunks) == ["héllo €𝄞"]


def test_invalid_utf8_becomes_replacement_character() -> None:
    assert datas(b"data: a\xffb\n\n") == ["a\ufffdb"]


def test_bom_at_stream_start_is_skipped() -> None:
    assert datas(b"\xef\xbb\xbfdata: x\n\n") == ["x"]


def test_bom_split_across_chunks() -> None:
    assert datas(b"\xef", b"\xbb", b"\xbfdata: x\n\n") == ["x"]


def test_bom_only_at_start() -> None:
    # A BOM later in the stream is part of the text; before a field name it spoils the name.
    assert datas(b"data: x\n\n\xef\xbb\xbfdata: y\n\n") == ["x"]
    assert datas(b"data: \xef\xbb\xbfy\n\n") == ["\ufeffy"]


def test_two_boms_only_the_first_is_stripped() -> None:
    assert datas(b"\xef\xbb\xbf\xef\xbb\xbfdata: x\n\n") == []


# --- fields -------------------------------------------------------------------------


def test_comments_are_ignored() -> None:
    assert datas(b": keep-alive\n:\ndata: x\n: more\n\n") == ["x"]


def test_multiline_data_joined_with_lf() -> None:
    assert datas(b"data: one\ndata:two\ndata:  three\n\n") == ["one\ntwo\n three"]


def test_only_one_leading_space_is_removed() -> None:
    assert datas(b"data:  x \n\n") == [" x "]


def test_value_may_contain_colons() -> None:
    assert datas(b'data: {"a": "b:c"}\n\n') == ['{"a": "b:c"}']


def test_event_type_defaults_to_message_and_resets() -> None:
    events = decode(b"event: ping\ndata: 1\n\ndata: 2\n\nevent:\ndata: 3\n\n")
    assert [(e.event, e.data) for e in events] == [("ping", "1"), ("message", "2"), ("message", "3")]


def test_field_without_colon_has_empty_value() -> None:
    # "data" alone appends an empty line: the event carries "" (WHATWG dispatches it).
    assert datas(b"data\n\n") == [""]
    assert datas(b"data\ndata\n\n") == ["\n"]


def test_unknown_fields_ignored() -> None:
    assert datas(b"foo: bar\nDATA: no\ndata : no\ndata: yes\n\n") == ["yes"]


def test_event_without_data_is_not_dispatched() -> None:
    assert decode(b"event: x\n\n\n\nid: 3\n\n") == []


def test_event_type_does_not_leak_into_next_event_after_undispatched_event() -> None:
    assert [e.event for e in decode(b"event: x\n\ndata: 1\n\n")] == ["message"]


def test_incomplete_event_at_end_is_discarded() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: 1\n\ndata: 2\n") == [SSEEvent("1")]
    assert decoder.has_partial_event
    assert decoder.end() == []


def test_unterminated_last_line_is_discarded() -> None:
    assert datas(b"data: 1\n\ndata: 2") == ["1"]


def test_feed_after_end_is_a_local_error() -> None:
    decoder = SSEDecoder()
    decoder.end()
    with pytest.raises(LocalProtocolError):
        decoder.feed(b"data: x\n\n")


# --- id and retry -------------------------------------------------------------------


def test_id_attached_and_persists() -> None:
    events = decode(b"id: 1\ndata: a\n\ndata: b\n\nid: 2\ndata: c\n\n")
    assert [(e.id, e.data) for e in events] == [("1", "a"), ("1", "b"), ("2", "c")]


def test_empty_id_resets_last_event_id() -> None:
    decoder = SSEDecoder()
    decoder.feed(b"id: 1\ndata: a\n\n")
    assert decoder.feed(b"id\ndata: b\n\n") == [SSEEvent("b", id="")]
    assert decoder.last_event_id == ""


def test_id_with_nul_is_ignored() -> None:
    decoder = SSEDecoder()
    events = decoder.feed(b"id: 1\ndata: a\n\nid: 2\x003\ndata: b\n\n")
    assert [e.id for e in events] == ["1", "1"]
    assert decoder.last_event_id == "1"


def test_priming_event_updates_last_event_id_without_dispatch() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"id: prime-7\n\n") == []
    assert decoder.last_event_id == "prime-7"


def test_id_in_unfinished_event_does_not_count() -> None:
    # WHATWG applies the id buffer when the event completes: resuming from the id of an
    # event cut off mid-way would make the server skip that event (found by tests/faults).
    decoder = SSEDecoder(last_event_id="4")
    decoder.feed(b"id: 5\ndata: partial\n")
    assert decoder.last_event_id == "4"
    decoder.end()
    assert decoder.last_event_id == "4"


def test_initial_last_event_id_for_resumed_stream() -> None:
    decoder = SSEDecoder(last_event_id="41")
    assert decoder.feed(b"data: x\n\n") == [SSEEvent("x", id="41")]


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (b"retry: 1500", 1500),
        (b"retry:0", 0),
        (b"retry: 15a", None),
        (b"retry: -1", None),
        (b"retry: 1.5", None),
        (b"retry:", None),
        (b"retry:  10", None),  # second space is part of the value: not all digits
        ("retry: \u0661\u0662".encode(), None),  # Arabic-Indic digits are not ASCII digits
    ],
)
def test_retry_digits_only(line: bytes, expected: int | None) -> None:
    decoder = SSEDecoder()
    decoder.feed(line + b"\n\n")
    assert decoder.retry == expected


def test_invalid_retry_keeps_previous_value() -> None:
    decoder = SSEDecoder()
    decoder.feed(b"retry: 100\n\nretry: x\n\n")
    assert decoder.retry == 100


# --- size limit ---------------------------------------------------------------------


def test_event_within_limit() -> None:
    assert datas(b"data: " + b"x" * 10 + b"\n\n") == ["x" * 10]
    assert decode(b"data: " + b"x" * 10 + b"\n\n", max_event_size=11)[0].data == "x" * 10


def test_data_over_limit_raises() -> None:
    decoder = SSEDecoder(max_event_size=16)
    with pytest.raises(MessageTooLargeError, match="limit of 16 bytes"):
        decoder.feed(b"data: 0123456789\ndata: 0123456789\n\n")


def test_unterminated_line_over_limit_raises() -> None:
    decoder = SSEDecoder(max_event_size=100)
    decoder.feed(b"data: " + b"x" * 50)
    with pytest.raises(MessageTooLargeError):
        decoder.feed(b"x" * 60)
    with pytest.raises(LocalProtocolError):  # unusable after failing
        decoder.feed(b"\n\n")


def test_limit_is_per_event() -> None:
    events = decode(*[b"data: " + b"x" * 90 + b"\n\n"] * 20, max_event_size=100)
    assert len(events) == 20


def test_many_small_chunks_of_a_long_line() -> None:
    decoder = SSEDecoder()
    for _ in range(1000):
        assert decoder.feed(b"ab") == []
    assert decoder.feed(b"\n\n") == []  # field name "abab..." is unknown
    assert decoder.feed(b"data: " + b"y" * 5000 + b"\n\n")[0].data == "y" * 5000


# --- encoding -----------------------------------------------------------------------


def test_encode_event_shape() -> None:
    assert encode_sse_event("a\nb", event="e", id="7", retry=10) == b"id: 7\nevent: e\nretry: 10\ndata: a\ndata: b\n\n"


def test_encode_priming_event() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(encode_sse_event("", id="p1")) == [SSEEvent("", id="p1")]


@pytest.mark.parametrize("kwargs", [{"id": "a\nb"}, {"id": "a\0b"}, {"event": "x\ry"}, {"retry": -1}], ids=str)
def test_encode_rejects_invalid_fields(kwargs: dict[str, object]) -> None:
    with pytest.raises(LocalProtocolError):
        encode_sse_event("x", **kwargs)  # type: ignore[arg-type]


def test_encode_normalizes_line_breaks() -> None:
    assert datas(encode_sse_event("a\r\nb\rc\nd")) == ["a\nb\nc\nd"]


# --- properties ---------------------------------------------------------------------


def _text(exclude: str = "", max_size: int | None = None) -> st.SearchStrategy[str]:
    """Any text encodable as UTF-8 (no lone surrogates), without the ``exclude`` characters."""
    return st.text(st.characters(codec="utf-8", exclude_characters=exclude), max_size=max_size)


_field_text = _text("\r\n\0", max_size=20)
_line = st.one_of(
    st.builds(lambda v: f"data:{v}", _field_text),
    st.builds(lambda v: f"data: {v}", _field_text),
    st.builds(lambda v: f"event: {v}", _field_text),
    st.builds(lambda v: f"id: {v}", _field_text),
    st.builds(lambda v: f"retry: {v}", st.one_of(st.integers(0, 10**6).map(str), _field_text)),
    st.builds(lambda v: f":{v}", _field_text),
    st.just(""),
    st.just("data"),
    _field_text,
)


@st.composite
def _streams(draw: st.DrawFn) -> bytes:
    lines = draw(st.lists(_line, max_size=30))
    eols = draw(st.lists(st.sampled_from(["\n", "\r", "\r\n"]), min_size=len(lines), max_size=len(lines)))
    bom = draw(st.sampled_from(["", "\ufeff"]))
    return (bom + "".join(line + eol for line, eol in zip(lines, eols, strict=True))).encode()


@given(stream=_streams(), data=st.data())
def test_any_chunking_gives_same_events(stream: bytes, data: st.DataObject) -> None:
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=12)))
    chunks = [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True)]
    whole, split = SSEDecoder(), SSEDecoder()
    expected = whole.feed(stream) + whole.end()
    got = [event for chunk in chunks for event in split.feed(chunk)] + split.end()
    assert got == expected
    assert (split.last_event_id, split.retry) == (whole.last_event_id, whole.retry)


@given(st.binary(max_size=200), st.data())
def test_any_chunking_of_arbitrary_bytes(stream: bytes, data: st.DataObject) -> None:
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=8)))
    chunks = [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True)]
    whole, split = SSEDecoder(), SSEDecoder()
    assert [e for c in chunks for e in split.feed(c)] == whole.feed(stream)


@given(
    texts=st.lists(_text(), min_size=1, max_size=5),
    event=st.one_of(st.none(), _text("\r\n")),
    event_id=st.one_of(st.none(), _text("\r\n\0")),
)
def test_encode_decode_round_trip(texts: list[str], event: str | None, event_id: str | None) -> None:
    stream = b"".join(encode_sse_event(t, event=event, id=event_id) for t in texts)
    events = decode(stream)
    normalized = [t.replace("\r\n", "\n").replace("\r", "\n") for t in texts]
    assert [e.data for e in events] == normalized
    assert {e.event for e in events} == {event or "message"}
    assert {e.id for e in events} == {event_id or ""}
