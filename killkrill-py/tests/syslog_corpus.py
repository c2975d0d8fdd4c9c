"""Comparing parsed syslog messages with the corpus `Msg` objects of
`testdata/corpora/syslog/` (shared by test_syslog.py and test_framing.py)."""

import calendar
import re

from conftest import message_bytes

BOM = b"\xef\xbb\xbf"
RFC3339 = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:\d{2})$"
)


def rfc3339_nanos(text: str) -> int:
    m = RFC3339.match(text)
    assert m, text
    y, mo, d, h, mi, s, frac, off = m.groups()
    secs = calendar.timegm((int(y), int(mo), int(d), int(h), int(mi), int(s)))
    if off != "Z":
        sign = -1 if off[0] == "-" else 1
        secs -= sign * (int(off[1:3]) * 3600 + int(off[4:6]) * 60)
    nanos = int((frac or "").ljust(9, "0")) if frac else 0
    return secs * 1_000_000_000 + nanos


def check_header(got, exp, only_present, ctx, errs):
    def cmp(field, value):
        want = exp.get(field)
        if only_present and want is None:
            return
        if value != want:
            errs.append(f"{ctx}: {field}: got {value!r}, want {want!r}")

    cmp("priority", got.priority)
    cmp("facility", got.facility)
    cmp("severity", got.severity)
    cmp("version", got.version)
    cmp("hostname", got.hostname)
    cmp("appname", got.appname)
    cmp("procid", got.procid)
    cmp("msgid", got.msgid)
    want_ts = exp.get("timestamp")
    if not (only_present and want_ts is None):
        want = None if want_ts is None else rfc3339_nanos(want_ts)
        if got.timestamp != want:
            errs.append(f"{ctx}: timestamp: got {got.timestamp_rfc3339}, want {want_ts}")


def check_full(got, exp, ctx, errs):
    check_header(got, exp, False, ctx, errs)
    want_sd = exp.get("structured_data")
    got_sd = got.structured_data or None
    if got_sd != want_sd:
        errs.append(f"{ctx}: structured_data: got {got_sd}, want {want_sd}")
    want = message_bytes(exp)
    want_bom = False
    if want is not None and want.startswith(BOM):
        want, want_bom = want[len(BOM):], True
    if want == b"":
        want = None
    if got.message != want or got.bom != want_bom:
        errs.append(f"{ctx}: message: got {got.message!r} (bom {got.bom}), want {want!r} (bom {want_bom})")
