"""The client's TLS options (``ca_file``, ``verify``, ``client_cert``,
``client_key``) against a real ``killkrill serve`` speaking HTTPS itself
(``--http-tls-cert``), with and without client certificates (mTLS).

The certificates (a CA, a server certificate for 127.0.0.1 and localhost,
a client certificate, and a client certificate of another CA) are made with
the ``openssl`` command; without it the tests are skipped.
"""

from __future__ import annotations

import asyncio
import shutil
import ssl
import subprocess
import time
from pathlib import Path
from typing import Dict, List

import pytest

import killkrill
from killkrill_server import Server, wait_until

pytestmark = pytest.mark.skipif(
    shutil.which("openssl") is None, reason="openssl is not installed (makes the test certificates)"
)


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=cwd)


def _ca(d: Path, name: str) -> None:
    _openssl(
        "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-days", "2", "-subj", f"/CN={name}",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        "-keyout", f"{name}.key", "-out", f"{name}.pem",
        cwd=d,
    )


def _leaf(d: Path, ca: str, name: str, ext: str) -> None:
    (d / f"{name}.ext").write_text(ext)
    _openssl(
        "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-subj", f"/CN={name}", "-keyout", f"{name}.key", "-out", f"{name}.csr",
        cwd=d,
    )
    _openssl(
        "x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.pem", "-CAkey", f"{ca}.key",
        "-CAcreateserial", "-days", "2", "-extfile", f"{name}.ext", "-out", f"{name}.pem",
        cwd=d,
    )


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> Dict[str, str]:
    d = tmp_path_factory.mktemp("pki")
    _ca(d, "ca")
    _ca(d, "other-ca")
    _leaf(
        d, "ca", "server",
        "basicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n"
        "subjectAltName=DNS:localhost,IP:127.0.0.1\n",
    )
    client_ext = "basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n"
    _leaf(d, "ca", "client", client_ext)
    _leaf(d, "other-ca", "stranger", client_ext)
    # The client certificate and its key in one file (client_key omitted).
    (d / "client-both.pem").write_text((d / "client.pem").read_text() + (d / "client.key").read_text())
    return {p.name: str(p) for p in d.iterdir()}


def _start(tmp_path: Path, pki: Dict[str, str], mtls: bool) -> Server:
    args: List[str] = ["--http-tls-cert", pki["server.pem"], "--http-tls-key", pki["server.key"]]
    if mtls:
        args += ["--http-tls-client-ca", pki["ca.pem"]]
    s = Server(tmp_path / "data", args=args)
    assert s.url.startswith("https://127.0.0.1:")
    return s


def _stop(s: Server) -> None:
    code = s.stop()
    assert code == 0, f"killkrill serve exited {code}: {s.log()}"


def _stored(c: killkrill.Client, host: str, n: int) -> List[str]:
    got = wait_until(
        f"{n} records of {host}",
        lambda: (lambda r: r if len(r) >= n else None)(c.query_logs(host=host).to_list()),
    )
    return sorted(r["message"] for r in got)  # type: ignore[union-attr]


def _refused(make) -> BaseException:  # type: ignore[no-untyped-def]
    """The error of a client refused at the TLS layer (as raised: the
    client does not wrap transport errors)."""
    with pytest.raises((ssl.SSLError, OSError)) as e:
        with make() as c:
            c.push_logs([{"msg": "must not arrive"}])
    return e.value


def test_https_with_ca_file_and_verify(tmp_path, pki):
    s = _start(tmp_path, pki, mtls=False)
    try:
        host = f"tls-{time.time_ns()}"
        # The system trust store does not know the test CA.
        e = _refused(lambda: killkrill.Client(s.url, s.api_key, timeout=10))
        assert isinstance(e, ssl.SSLCertVerificationError), repr(e)
        # Another CA is not this server's either.
        e = _refused(lambda: killkrill.Client(s.url, s.api_key, timeout=10, ca_file=pki["other-ca.pem"]))
        assert isinstance(e, ssl.SSLCertVerificationError), repr(e)
        with killkrill.Client(s.url, s.api_key, timeout=10, ca_file=pki["ca.pem"]) as c:
            assert c.ready()
            assert c.push_logs([{"host": host, "msg": "ca_file"}], gzip=True) == 1
        # verify=False: no certificate check at all (testing only).
        with killkrill.Client(s.url, s.api_key, timeout=10, verify=False) as c:
            assert c.push_logs([{"host": host, "msg": "verify off"}]) == 1

        async def main() -> List[str]:
            async with killkrill.AsyncClient(s.url, s.api_key, ca_file=pki["ca.pem"]) as ac:
                assert await ac.push_logs([{"host": host, "msg": "async ca_file"}]) == 1
                for _ in range(300):
                    got = await ac.query_logs(host=host).to_list()
                    if len(got) == 3:
                        return sorted(r["message"] for r in got)
                    await asyncio.sleep(0.05)
                return []

        assert asyncio.run(main()) == ["async ca_file", "ca_file", "verify off"]
        # Credentials still count over TLS.
        with killkrill.Client(s.url, "kk_wrong", timeout=10, ca_file=pki["ca.pem"]) as c:
            with pytest.raises(killkrill.ApiError) as api:
                c.push_logs([{"msg": "refused"}])
            assert api.value.status == 401
        with pytest.raises(ValueError):
            killkrill.Client(s.url, s.api_key, ssl_context=ssl.create_default_context(), ca_file=pki["ca.pem"])
    finally:
        _stop(s)


def test_mtls_needs_the_client_certificate(tmp_path, pki):
    s = _start(tmp_path, pki, mtls=True)
    try:
        host = f"mtls-{time.time_ns()}"
        # No client certificate: refused at the handshake.
        _refused(lambda: killkrill.Client(s.url, s.api_key, timeout=10, ca_file=pki["ca.pem"]))
        # A certificate of another CA: refused too.
        _refused(
            lambda: killkrill.Client(
                s.url, s.api_key, timeout=10, ca_file=pki["ca.pem"],
                client_cert=pki["stranger.pem"], client_key=pki["stranger.key"],
            )
        )
        with killkrill.Client(
            s.url, s.api_key, timeout=10, ca_file=pki["ca.pem"],
            client_cert=pki["client.pem"], client_key=pki["client.key"],
        ) as c:
            assert c.push_logs([{"host": host, "msg": "cert and key"}]) == 1
        # Certificate and key in one file.
        with killkrill.Client(
            s.url, s.api_key, timeout=10, ca_file=pki["ca.pem"], client_cert=pki["client-both.pem"]
        ) as c:
            assert c.push_logs([{"host": host, "msg": "one file"}]) == 1
            assert _stored(c, host, 2) == ["cert and key", "one file"]

        async def main() -> int:
            async with killkrill.AsyncClient(
                s.url, s.api_key, ca_file=pki["ca.pem"],
                client_cert=pki["client.pem"], client_key=pki["client.key"],
            ) as ac:
                return await ac.push_logs([{"host": host, "msg": "async mtls"}])

        assert asyncio.run(main()) == 1
        # The certificate is checked in addition to the API key, not
        # instead of it.
        with killkrill.Client(
            s.url, None, timeout=10, ca_file=pki["ca.pem"],
            client_cert=pki["client.pem"], client_key=pki["client.key"],
        ) as c:
            with pytest.raises(killkrill.ApiError) as api:
                c.push_logs([{"msg": "no key"}])
            assert api.value.status == 401
    finally:
        _stop(s)
