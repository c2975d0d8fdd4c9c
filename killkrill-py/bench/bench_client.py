"""What the Python client costs on top of the HTTP it sends, against a real
`killkrill serve` started here.

Each figure is a ratio against a baseline measured in the same run on the
same server: the baseline sends the very same bytes with bare
`http.client` (bodies encoded beforehand, answers read but not decoded), so
the ratio is the client's own overhead (encoding records, decoding pages,
following cursors), not the server's speed.

    KILLKRILL_TEST_BIN=target/debug/killkrill python killkrill-py/bench/bench_client.py

(needs the installed `killkrill` package; `--records N` to change the size).
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, List

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import killkrill  # noqa: E402
from killkrill import _api  # noqa: E402
from killkrill_server import Server  # noqa: E402


def best(f: Callable[[], object], runs: int) -> float:
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        f()
        times.append(time.perf_counter() - t)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--records", type=int, default=20_000)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    n = args.records
    with tempfile.TemporaryDirectory() as d:
        s = Server(Path(d) / "data")
        try:
            run(s, n, args.runs)
        finally:
            s.stop()


def run(s: Server, n: int, runs: int) -> None:
    c = killkrill.Client(s.url, s.api_key, timeout=60)
    host, port = s.addr.rsplit(":", 1)
    headers = dict(c._headers)
    t0 = (time.time_ns() - 3600 * 10**9) // 10**6 * 10**6
    records = [
        {"ts": _api.rfc3339_from_ns(t0 + i * 10**6), "host": "bench", "level": "info", "msg": f"record {i}", "i": i}
        for i in range(n)
    ]
    bodies = [b for b, _ in _api.ndjson_batches(records, 5000, _api.DEFAULT_BATCH_BYTES)]

    def raw_push() -> None:
        conn = http.client.HTTPConnection(host, int(port))
        for b in bodies:
            conn.request("POST", "/api/v1/logs", b, {**headers, "Content-Type": "application/x-ndjson"})
            r = conn.getresponse()
            r.read()
            assert r.status == 200, r.status
        conn.close()

    def client_push() -> None:
        assert c.push_logs(records, batch_size=5000, gzip=False) == n

    # Interleaved runs: the store grows by the same amount for both.
    push_raw: List[float] = []
    push_client: List[float] = []
    for _ in range(runs):
        push_raw.append(best(raw_push, 1))
        push_client.append(best(client_push, 1))

    # Wait until everything is stored, then page through it.
    total = n * runs * 2
    while len(list(c.query_logs(host="bench", start=t0 - 10**9, page_size=5000))) < total:
        time.sleep(0.2)
    start = _api.time_param(t0 - 10**9)

    def raw_pages() -> int:
        conn = http.client.HTTPConnection(host, int(port))
        cursor = None
        count = 0
        while True:
            q = f"/api/v1/logs?host=bench&start={start}&limit=1000"
            if cursor:
                q += f"&cursor={cursor}"
            conn.request("GET", q, headers=headers)
            body = conn.getresponse().read()
            # The baseline must find the cursor: json.loads is the least
            # any client does with a page.
            doc = json.loads(body)
            count += len(doc["data"])
            cursor = doc["next_cursor"]
            if not cursor:
                conn.close()
                return count

    def client_pages() -> int:
        return sum(1 for _ in c.query_logs(host="bench", start=t0 - 10**9, page_size=1000))

    def async_pages() -> int:
        async def go() -> int:
            async with killkrill.AsyncClient(s.url, s.api_key, timeout=60) as ac:
                return len(await ac.query_logs(host="bench", start=t0 - 10**9, page_size=1000).to_list())

        return asyncio.run(go())

    assert raw_pages() == client_pages() == async_pages() == total
    q_raw = best(raw_pages, runs)
    q_client = best(client_pages, runs)
    q_async = best(async_pages, runs)

    pr, pc = statistics.median(push_raw), statistics.median(push_client)
    print(f"records per push run: {n}; records paged: {total}; python {sys.version.split()[0]}")
    print(f"push_logs       {n / pc:>10.0f} rec/s   bare http.client {n / pr:>10.0f} rec/s   ratio {pc / pr:.2f}x time")
    print(
        f"query_logs      {total / q_client:>10.0f} rec/s   bare http.client {total / q_raw:>10.0f} rec/s"
        f"   ratio {q_client / q_raw:.2f}x time"
    )
    print(f"AsyncClient     {total / q_async:>10.0f} rec/s   ratio to bare {q_async / q_raw:.2f}x time")


if __name__ == "__main__":
    main()
