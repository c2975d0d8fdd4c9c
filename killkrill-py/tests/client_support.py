"""Helpers of the client tests (test_client*.py): probes that skip a test
when the binary under test lacks a route, unique values, timestamps, and
waiting for records to be stored. The `server` and `client` fixtures are in
conftest.py.
"""

from __future__ import annotations

import time
from typing import Any, Dict, List

import pytest

import killkrill
from killkrill import _api
from killkrill_server import wait_until

NS = 1_000_000_000

def need(c: killkrill.Client, path: str) -> None:
    """Skips when the server does not serve `path` (asked with an unknown
    parameter, so an existing route answers 400 without doing work)."""
    status, _, body = c._send("GET", path, [("killkrill_probe", "1")])
    # 405: the path exists for POST (ingest) only.
    if status in (404, 405):
        pytest.skip(f"{path} is not served by this killkrill build (the read API, issue #7, is not merged)")


def need_metric_store(c: killkrill.Client) -> None:
    """Skips when the server counts metric samples without storing them
    (`killkrill_metric_samples_unstored_total`: no metric store sink)."""
    c.push_metrics([("pyc_probe", {}, 1.0)])

    def counted():
        text = c._send("GET", "/metrics")[2].decode()
        return [
            ln for ln in text.splitlines() if ln.startswith("killkrill_metric_samples_unstored_total")
        ] or (c.query("pyc_probe").series)

    found = wait_until("the probe sample to be stored or counted as unstored", counted)
    if isinstance(found, list) and found and isinstance(found[0], str):
        pytest.skip(
            "this killkrill build counts metric samples without storing them "
            "(killkrill_metric_samples_unstored_total; the metric store sink is not merged)"
        )


_run = [0]


def unique(prefix: str) -> str:
    """A value no other test uses (the server is shared by the module)."""
    _run[0] += 1
    return f"{prefix}-{_run[0]}-{time.monotonic_ns()}"


def recent(seconds_ago: float) -> int:
    """A timestamp in ns, `seconds_ago` before now, whole milliseconds."""
    return (time.time_ns() - int(seconds_ago * NS)) // 1_000_000 * 1_000_000


def rfc(ns: int) -> str:
    return _api.rfc3339_from_ns(ns)


def stored(c: killkrill.Client, n: int, **filters: Any) -> List[Dict[str, Any]]:
    """The records matching `filters`, once there are `n` of them."""
    got: List[Dict[str, Any]] = []

    def check():
        nonlocal got
        got = list(c.query_logs(**filters, page_size=1000))
        return len(got) >= n

    wait_until(f"{n} records matching {filters}", check)
    return got
