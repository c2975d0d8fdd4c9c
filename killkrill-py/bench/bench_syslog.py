"""Syslog parsing per message: killkrill vs the pure-Python
`syslog-rfc5424-parser` (PyPI), on the same RFC 5424 messages.

Both parsers get each message as the type they take (killkrill: bytes, as a
socket delivers them; syslog-rfc5424-parser: str) and return a message object
with every field parsed (PRI, timestamp, host, app, procid, msgid, structured
data, message). Rounds alternate between the parsers and the median per
round is compared, so load from other processes affects both alike.

    python killkrill-py/bench/bench_syslog.py [--messages N] [--rounds R]

Prints per-message times and the ratio; the goal is killkrill >= 20x faster.
"""

import argparse
import platform
import random
import statistics
import sys
import time

import killkrill

try:
    from syslog_rfc5424_parser import SyslogMessage as PyMessage
except ImportError:  # pragma: no cover - the benchmark needs the baseline
    sys.exit("pip install syslog-rfc5424-parser first")


def messages(n: int, seed: int = 7):
    """Realistic RFC 5424 lines: half with structured data, varying lengths."""
    rnd = random.Random(seed)
    hosts = ["web1", "web2.example.com", "db-primary", "10.0.3.17", "cache-7"]
    apps = ["nginx", "postgres", "sshd", "kubelet", "app-server"]
    words = "request completed failed user login timeout upstream retry cache miss connection reset".split()
    out = []
    for i in range(n):
        pri = rnd.randrange(0, 192)
        ts = f"2026-11-25T{rnd.randrange(24):02d}:{rnd.randrange(60):02d}:{rnd.randrange(60):02d}.{rnd.randrange(10**6):06d}Z"
        sd = "-"
        if i % 2 == 0:
            sd = f'[req@32473 id="{rnd.randrange(10**9)}" path="/api/v1/items/{i}" status="{rnd.choice([200, 404, 503])}"][origin ip="10.0.{i % 256}.{rnd.randrange(256)}"]'
        msg = " ".join(rnd.choice(words) for _ in range(rnd.randrange(4, 20)))
        line = f"<{pri}>1 {ts} {rnd.choice(hosts)} {rnd.choice(apps)} {rnd.randrange(1, 65536)} ID{rnd.randrange(100)} {sd} {msg}"
        out.append(line)
    return out


def time_once(fn, items):
    start = time.perf_counter_ns()
    for it in items:
        fn(it)
    return (time.perf_counter_ns() - start) / len(items)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--messages", type=int, default=5000)
    ap.add_argument("--rounds", type=int, default=15)
    args = ap.parse_args()

    text = messages(args.messages)
    raw = [t.encode() for t in text]
    parser = killkrill.SyslogParser(strict=True, format="rfc5424")

    # Same input, same answers: check a sample of fields agree first.
    for t, b in zip(text[:200], raw[:200]):
        ours, theirs = parser.parse(b), PyMessage.parse(t).as_dict()
        assert ours.hostname == theirs["hostname"] and ours.appname == theirs["appname"], t
        assert (ours.text or "") == (theirs["msg"] or ""), t
        assert ours.structured_data == (theirs["sd"] or {}), t

    def per_message(fn):
        start = time.perf_counter_ns()
        kept = fn()
        elapsed = (time.perf_counter_ns() - start) / len(raw)
        del kept
        return elapsed

    ours_ns, theirs_ns, many_ns, kept_ns = [], [], [], []
    for _ in range(args.rounds):
        ours_ns.append(time_once(parser.parse, raw))
        theirs_ns.append(time_once(PyMessage.parse, text))
        # Keeping every result alive costs allocation and garbage-collector
        # work that the loops above do not pay: compare parse_many with the
        # list comprehension that keeps them too.
        many_ns.append(per_message(lambda: parser.parse_many(raw)))
        kept_ns.append(per_message(lambda: [parser.parse(m) for m in raw]))

    ours, theirs, many, kept = (statistics.median(x) for x in (ours_ns, theirs_ns, many_ns, kept_ns))
    avg_len = sum(map(len, raw)) / len(raw)
    print(f"python {platform.python_version()}, killkrill {killkrill.__version__}, "
          f"{args.messages} messages (avg {avg_len:.0f} bytes), {args.rounds} rounds, medians")
    print(f"syslog-rfc5424-parser  SyslogMessage.parse(str)   {theirs / 1000:8.2f} us/message  {1e9 / theirs:>12,.0f} msg/s")
    print(f"killkrill              SyslogParser.parse(bytes)  {ours / 1000:8.2f} us/message  {1e9 / ours:>12,.0f} msg/s  {theirs / ours:6.1f}x")
    print(f"killkrill              [parse(m) for m in batch]  {kept / 1000:8.2f} us/message  {1e9 / kept:>12,.0f} msg/s  (results kept)")
    print(f"killkrill              SyslogParser.parse_many    {many / 1000:8.2f} us/message  {1e9 / many:>12,.0f} msg/s  (results kept)")


if __name__ == "__main__":
    main()
