"""Shared helpers: where the repository's conformance corpora live.

The corpora are `testdata/corpora/` in the repository (see its README.md for
the format of every file); the tests run from the source tree, so the path
is taken relative to this file.
"""

import json
from pathlib import Path

import pytest

import killkrill
from killkrill_server import Server

REPO = Path(__file__).resolve().parents[2]
CORPORA = REPO / "testdata" / "corpora"
CAPTURED = REPO / "testdata" / "captured"


def load_corpus(relative: str):
    """The parsed JSON of `testdata/corpora/<relative>`."""
    path = CORPORA / relative
    if not path.exists():
        pytest.fail(f"corpus {path} is missing (run the tests from the repository)")
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def corpus_text(relative: str) -> str:
    return (CORPORA / relative).read_text(encoding="utf-8")


def case_input(case) -> bytes:
    """`input`, or the bytes of `input_hex` when the input is not UTF-8."""
    if case.get("input") is not None:
        return case["input"].encode("utf-8")
    return bytes.fromhex(case["input_hex"])


def message_bytes(exp):
    """The expected MSG bytes of a corpus `Msg` (message or message_hex)."""
    if exp.get("message") is not None:
        return exp["message"].encode("utf-8")
    if exp.get("message_hex") is not None:
        return bytes.fromhex(exp["message_hex"])
    return None


# --- a killkrill serve shared by a test module (the client tests) ------------------


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    s = Server(tmp_path_factory.mktemp("killkrill-data"))
    yield s
    code = s.stop()
    assert code == 0, f"killkrill serve exited {code}: {s.log()}"


@pytest.fixture()
def client(server):
    with killkrill.Client(server.url, server.api_key, timeout=10) as c:
        yield c
