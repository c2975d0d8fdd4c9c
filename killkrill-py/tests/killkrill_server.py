"""A real `killkrill serve` for the client tests: the binary on a free port
with a fresh data directory, stopped with SIGTERM.

The binary is `$KILLKRILL_TEST_BIN` (scripts/test-python builds it and sets it);
without the variable, the debug build in the Cargo target directory
(`$CARGO_TARGET_DIR` or the repository's `target/`). Without a binary the
client tests are skipped with the reason printed; with `KILLKRILL_TEST_BIN` set
to a missing file they fail.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional

import pytest

REPO = Path(__file__).resolve().parents[2]


def find_binary() -> Path:
    env = os.environ.get("KILLKRILL_TEST_BIN")
    if env:
        p = Path(env)
        if not p.is_file():
            pytest.fail(f"KILLKRILL_TEST_BIN={env} does not exist")
        return p
    target = Path(os.environ.get("CARGO_TARGET_DIR") or REPO / "target")
    p = target / "debug" / "killkrill"
    if not p.is_file():
        pytest.skip(
            f"no killkrill binary at {p}: build it (cargo build --workspace --bin killkrill) "
            "or set KILLKRILL_TEST_BIN; scripts/test-python does both"
        )
    return p


class Server:
    """One running `killkrill serve`; `url` is its HTTP listener
    (`https://` when `args` give it a certificate, `--http-tls-cert`)."""

    def __init__(
        self,
        data_dir: Path,
        env: Optional[Dict[str, str]] = None,
        args: Optional[List[str]] = None,
    ) -> None:
        binary = find_binary()
        # The server reads KILLKRILL_* as configuration: none of the
        # caller's, only what the test asks for.
        e = {
            k: v
            for k, v in os.environ.items()
            if k not in ("DB_TYPE", "DATABASE_URL") and not k.startswith("KILLKRILL_")
        }
        e.setdefault("RUST_LOG", "warn")
        e.update(env or {})
        self.proc = subprocess.Popen(
            [
                str(binary),
                "serve",
                "--data-dir",
                str(data_dir),
                "--http",
                "127.0.0.1:0",
                "--syslog-udp",
                "",
                "--syslog-tcp",
                "",
                *(args or []),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=e,
        )
        self.stderr: List[bytes] = []
        assert self.proc.stdout is not None and self.proc.stderr is not None
        threading.Thread(target=self._drain, args=(self.proc.stderr,), daemon=True).start()
        # `killkrill serve: http ADDR ...` (a first start with
        # authentication prints the bootstrap credentials before it).
        first = ""
        for _ in range(20):
            first = self.proc.stdout.readline().decode()
            if not first or first.startswith("killkrill serve: http "):
                break
        if not first.startswith("killkrill serve: http "):
            self.stop()
            raise RuntimeError(f"killkrill serve did not start: {first!r} {self.log()}")
        words = first.split()
        self.addr = words[words.index("http") + 1]
        scheme = "https" if "--http-tls-cert" in (args or []) else "http"
        self.url = f"{scheme}://{self.addr}"
        # The `ingest,read` key the first start created, when the server
        # authenticates (None when it does not).
        creds = data_dir / "bootstrap-credentials.json"
        self.api_key: Optional[str] = None
        self.admin: Optional[Dict[str, str]] = None
        if creds.exists():
            doc = json.loads(creds.read_text())
            self.api_key = doc["api_key"]
            self.admin = doc
        threading.Thread(target=self._drain, args=(self.proc.stdout,), daemon=True).start()

    def _drain(self, pipe) -> None:  # type: ignore[no-untyped-def]
        for line in pipe:
            self.stderr.append(line)
            del self.stderr[:-200]

    def log(self) -> str:
        return b"".join(self.stderr[-40:]).decode("utf-8", "replace")

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


def wait_until(what: str, check: Callable[[], object], timeout: float = 15.0) -> object:
    """Polls `check` until it returns something truthy (ingest is
    asynchronous: an accepted batch is queued, then written by a worker)."""
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}; last: {last!r}")
