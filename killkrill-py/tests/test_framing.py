"""killkrill-core/src/framing through the Python API: Framer (incremental
RFC 6587), BadFrame, datagram_message, and the shared corpus
`syslog/octet_counting.json` fed whole, one byte at a time and in chunks
of 7 bytes."""

import pytest

import killkrill
from conftest import load_corpus
from syslog_corpus import check_full, check_header

RFC5424_STRICT = killkrill.SyslogParser(strict=True, format="rfc5424")
RFC5424_LENIENT = killkrill.SyslogParser(format="rfc5424")


def frames(data: bytes, max_len: int, chunk: int):
    framer = killkrill.Framer("octet_counting", max_frame_len=max_len)
    out = []
    for i in range(0, len(data), chunk):
        out.extend(framer.feed(data[i : i + chunk]))
    out.extend(framer.finish())
    assert framer.buffered == 0
    return out


def found_byte(token):
    if token == "EOF":
        return None
    if token == "WS":
        return b" "
    assert token.startswith("ILLEGAL(") and token.endswith(")"), token
    return token[len("ILLEGAL(") : -1].encode()[:1]


def check(frame, exp, strict, ctx, errs):
    """One of our frames against one corpus frame (as the Rust corpus test)."""
    err = exp["error"]
    if isinstance(frame, bytes):
        if err is not None and err["layer"] != "rfc5424":
            errs.append(f"{ctx}: got a message, want framing error {err}")
            return
        try:
            m = RFC5424_STRICT.parse(frame)
        except killkrill.SyslogParseError as e:
            if err is None:
                errs.append(f"{ctx}: rejected ({e}), want a message")
            else:
                if (e.kind, e.column) != (err["kind"], err["column"]):
                    errs.append(f"{ctx}: {e}, want {err}")
                if not strict:
                    check_header(RFC5424_LENIENT.parse(frame), exp["message"], True, ctx, errs)
            return
        if err is None:
            check_full(m, exp["message"], ctx, errs)
        else:
            errs.append(f"{ctx}: parsed, want error {err}")
        return
    assert isinstance(frame, killkrill.BadFrame)
    kind = err["kind"] if err else None
    if frame.kind == "bad_length" and kind == "unexpected_token":
        if frame.found != found_byte(err["found"]):
            errs.append(f"{ctx}: found {frame.found!r}, want {err['found']}")
        assert frame.expected
    elif frame.kind == "too_long" and kind == "msglen_exceeds_max":
        if (frame.declared, frame.max) != (err["size"], err["max"]):
            errs.append(f"{ctx}: too long {frame.declared}/{frame.max}, want {err}")
    elif frame.kind == "truncated" and kind == "truncated_frame" and strict:
        if frame.declared != err["octets"]:
            errs.append(f"{ctx}: truncated {frame.declared}, want {err}")
        assert frame.received == len(frame.kept or b"")
    elif frame.kind == "truncated" and not strict:
        # Best effort parses what arrived, as go-syslog does.
        check(frame.kept or b"", exp, False, ctx, errs)
    else:
        errs.append(f"{ctx}: got {frame!r}, want {err}")


def test_octet_counting_corpus():
    cases = load_corpus("syslog/octet_counting.json")
    assert len(cases) == 17
    errs = []
    checked = 0
    for case in cases:
        data = case["input"].encode()
        best, strict = case["best_effort"], case["strict"]
        for chunk in (max(len(data), 1), 1, 7):
            ctx = f"{case['id']} (chunks of {chunk})"
            got = frames(data, case["max_message_length"], chunk)
            if not data:
                assert got == [], f"{ctx}: an empty stream has no frames"
                continue
            if len(got) != len(best):
                errs.append(f"{ctx}: {len(got)} frames, want {len(best)}: {got}")
                continue
            for i, (f, exp) in enumerate(zip(got, best)):
                check(f, exp, False, f"{ctx} frame {i + 1}", errs)
            for i, (f, exp) in enumerate(zip(got, strict)):
                check(f, exp, True, f"{ctx} strict frame {i + 1}", errs)
            checked += 1
    assert not errs, "\n".join(errs)
    assert checked == 16 * 3


def test_auto_mode_mixes_framings_and_counts():
    f = killkrill.Framer()
    assert (f.mode, f.max_frame_len) == ("auto", 65536)
    out = f.feed(b"16 <1>1 - - - - - -<2>1 - - - - - -\n<3>")
    assert out == [b"<1>1 - - - - - -", b"<2>1 - - - - - -"]
    assert f.buffered == 3
    assert f.finish() == [b"<3>"]
    assert f.stats == {
        "bytes": 39,
        "messages": 3,
        "octet_counted": 1,
        "non_transparent": 2,
        "bad_frames": 0,
        "discarded_bytes": 0,
        "empty_frames": 0,
    }
    assert "auto" in repr(f)


def test_incremental_feeding_keeps_partial_frames():
    f = killkrill.Framer("octet_counting")
    assert f.feed(b"1") == []
    assert f.feed(b"6 <1>1 - - ") == []
    assert f.feed("- - -") == []
    assert f.feed(bytearray(b" -")) == [b"<1>1 - - - - - -"]
    assert f.finish() == []


def test_non_transparent_delimiters():
    f = killkrill.Framer("non_transparent")
    assert f.feed(b"a\nb\r\nc\x00\n\nd") == [b"a", b"b", b"c"]
    assert f.finish() == [b"d"]
    assert f.stats["empty_frames"] == 2  # the LF after the NUL, and the blank line
    # A leading number is not a length in non-transparent mode.
    f = killkrill.Framer("non_transparent")
    assert f.feed(b"16 <1>1 - - - - - -\n") == [b"16 <1>1 - - - - - -"]


def test_bad_frames():
    f = killkrill.Framer("octet_counting", max_frame_len=10)
    out = f.feed(b"20 <1>1 - - - - - - - -x\n") + f.finish()
    too_long = out[0]
    assert isinstance(too_long, killkrill.BadFrame)
    assert (too_long.kind, too_long.declared, too_long.max, too_long.frame, too_long.offset) == ("too_long", 20, 10, 1, 0)
    assert too_long.kept is None and too_long.received is None and too_long.found is None
    assert too_long.stats["bad_frames"] == 1
    assert "exceeds the maximum frame size 10" in str(too_long)
    assert "too_long" in repr(too_long)

    f = killkrill.Framer("octet_counting")
    out = f.feed(b"30 <1>1 - -") + f.finish()
    (t,) = out
    assert (t.kind, t.declared, t.received, t.kept) == ("truncated", 30, 8, b"<1>1 - -")
    assert t.max is None and t.expected is None

    f = killkrill.Framer("octet_counting")
    out = f.feed(b"x\n16 <1>1 - - - - - -")
    assert out[0].kind == "bad_length" and out[0].found == b"x"
    assert out[1] == b"<1>1 - - - - - -"
    assert f.stats["discarded_bytes"] == 1  # the x; the LF ends the skip

    f = killkrill.Framer("non_transparent", max_frame_len=4)
    out = f.feed(b"toolong\nok\n")
    assert out[0].kind == "too_long" and out[0].declared is None
    assert out[1] == b"ok"


def test_framer_argument_errors():
    with pytest.raises(ValueError, match="unknown framing mode"):
        killkrill.Framer("lines")
    with pytest.raises(ValueError, match="at least 1"):
        killkrill.Framer(max_frame_len=0)
    with pytest.raises(TypeError):
        killkrill.Framer().feed(123)


def test_large_stream_in_chunks():
    msg = b"<13>1 2020-01-01T00:00:00Z host app - - - %05d"
    data = b"".join(b"%d %s" % (len(msg % i), msg % i) for i in range(10000))
    f = killkrill.Framer()
    out = []
    for i in range(0, len(data), 4096):
        out.extend(f.feed(data[i : i + 4096]))
    out.extend(f.finish())
    assert len(out) == 10000 and out[9999].endswith(b"09999")
    assert f.stats["octet_counted"] == 10000


@pytest.mark.parametrize(
    "datagram,message",
    [
        (b"<156>pyapp: msg\x00", b"<156>pyapp: msg"),
        (b"<13>x\n", b"<13>x"),
        (b"<13>x\r\n\x00", b"<13>x"),
        (b"<13>x", b"<13>x"),
        (b"\x00\n", b""),
        (b"a\x00b", b"a\x00b"),
        ("<13>text\n", b"<13>text"),
    ],
)
def test_datagram_message(datagram, message):
    assert killkrill.datagram_message(datagram) == message
