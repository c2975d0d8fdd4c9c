"""The client's credentials and transport against a real `killkrill serve`
(see killkrill_server.py): the API key as a bearer token, authentication
errors, and HTTPS through a TLS-terminating proxy (`ssl_context`). The
client's own TLS options against `serve --http-tls-*` are in
test_client_tls.py.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from pathlib import Path

import pytest

import killkrill
from client_support import need, stored, unique

# --- credentials ---------------------------------------------------------------------------


def test_api_key_is_sent_as_a_bearer_token(server):
    c = killkrill.Client(server.url, api_key="kk_secret")
    assert c._headers["Authorization"] == "Bearer kk_secret"
    assert "kk_secret" not in repr(c) and "api_key=***" in repr(c)
    with pytest.raises(ValueError):
        killkrill.Client(server.url, api_key="a\r\nX-Evil: 1")
    with pytest.raises(ValueError):
        killkrill.Client("http://user:pw@127.0.0.1:1")
    with pytest.raises(ValueError):
        killkrill.AsyncClient(server.url, headers={"X-A": "1\r\nX-B: 2"})


def test_api_key_authentication(server):
    """With authentication on (the first start's `ingest,read` key), a
    request without a key or with a wrong one is a 401 ApiError; the key
    works as a Bearer token (the client's way) and as X-API-Key."""
    if server.api_key is None:
        pytest.skip(
            "this killkrill build does not authenticate (no bootstrap key): the auth branch is not merged"
        )
    host = unique("auth")
    anonymous = killkrill.Client(server.url)
    wrong = killkrill.Client(server.url, api_key="kk_" + "x" * 43)
    for c in (anonymous, wrong):
        with pytest.raises(killkrill.ApiError) as e:
            c.push_logs([{"host": host, "msg": "refused"}])
        assert (e.value.status, e.value.error_type) == (401, "unauthorized"), e.value
        assert e.value.message
        with pytest.raises(killkrill.ApiError) as e:
            list(c.query_logs(host=host))
        assert e.value.status == 401
        with pytest.raises(killkrill.ApiError) as e:
            c.tail(host=host).open()
        assert e.value.status == 401
        with pytest.raises(killkrill.ApiError) as e:
            c.query("1")
        assert e.value.status == 401
    assert anonymous.ready()  # public

    bearer = killkrill.Client(server.url, server.api_key)
    header = killkrill.Client(server.url, headers={"X-API-Key": server.api_key})
    assert bearer.push_logs([{"host": host, "msg": "bearer"}]) == 1
    assert header.push_logs([{"host": host, "msg": "header"}]) == 1
    assert sorted(r["message"] for r in stored(bearer, 2, host=host)) == ["bearer", "header"]

    async def main():
        async with killkrill.AsyncClient(server.url, api_key="kk_" + "y" * 43) as ac:
            with pytest.raises(killkrill.ApiError) as e:
                await ac.push_logs([{"msg": "refused"}])
            assert e.value.status == 401
        async with killkrill.AsyncClient(server.url, server.api_key) as ac:
            assert len(await ac.query_logs(host=host).to_list()) == 2

    asyncio.run(main())


class TlsProxy:
    """A TLS-terminating proxy in front of the server (killkrill's HTTP
    listener speaks plain HTTP; https:// deployments put one in front):
    accepts TLS on a free port and pipes the bytes to `backend`."""

    def __init__(self, backend: str, cert: Path, key: Path) -> None:
        import ssl

        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(str(cert), str(key))
        self.ctx = ctx
        host, port = backend.rsplit(":", 1)
        self.backend = (host, int(port))
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                raw, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            threading.Thread(target=self._conn, args=(raw,), daemon=True).start()

    def _conn(self, raw: socket.socket) -> None:
        try:
            tls = self.ctx.wrap_socket(raw, server_side=True)
        except OSError:
            raw.close()
            return
        up = socket.create_connection(self.backend)

        def pipe(a: socket.socket, b: socket.socket) -> None:
            try:
                while True:
                    data = a.recv(65536)
                    if not data:
                        break
                    b.sendall(data)
            except OSError:
                pass
            for x in (a, b):
                try:
                    x.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

        threading.Thread(target=pipe, args=(up, tls), daemon=True).start()
        pipe(tls, up)

    def close(self) -> None:
        self.sock.close()


def test_https_through_a_tls_proxy(server, tmp_path):
    import shutil
    import ssl
    import subprocess

    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed (needed to make the test certificate)")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost,IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    proxy = TlsProxy(server.addr, cert, key)
    try:
        url = f"https://localhost:{proxy.port}"
        trust = ssl.create_default_context(cafile=str(cert))
        # Not trusted by the system store: refused before any request.
        with pytest.raises(ssl.SSLError):
            killkrill.Client(url, server.api_key).ready()
        c = killkrill.Client(url, server.api_key, ssl_context=trust)
        host = unique("tls")
        assert c.push_logs([{"host": host, "msg": "over tls"}], gzip=True) == 1
        assert c.ready()
        need(c, "/api/v1/logs")
        assert [r["message"] for r in stored(c, 1, host=host)] == ["over tls"]

        async def main():
            async with killkrill.AsyncClient(url, server.api_key, ssl_context=trust) as ac:
                assert await ac.push_logs([{"host": host, "msg": "async tls"}]) == 1
                for _ in range(200):
                    got = await ac.query_logs(host=host).to_list()
                    if len(got) == 2:
                        return sorted(r["message"] for r in got)
                    await asyncio.sleep(0.05)

        assert asyncio.run(main()) == ["async tls", "over tls"]
        assert proxy.accepted >= 3
    finally:
        proxy.close()
