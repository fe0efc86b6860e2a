"""The integration client's sessions still honour the proxy environment, read once per host."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
import requests

from tasks.transport import EnvironmentOnceSession
from tests.support.integration_server import IntegrationServer, integration_server

AUTH = {"Authorization": "Bearer test-token"}


@pytest.fixture
def server() -> Iterator[IntegrationServer]:
    """A loopback integration API with one supplier."""
    with integration_server() as srv:
        srv.set_records("supplier", [{"id": "r1", "created_at": "2024-01-01T00:00:00+00:00",
                                      "updated_at": "2024-01-01T00:00:00+00:00"}])
        yield srv


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def dead_proxy(monkeypatch: pytest.MonkeyPatch) -> str:
    """HTTP_PROXY points at a closed loopback port; no NO_PROXY exemption."""
    proxy = f"http://127.0.0.1:{closed_port()}"
    for name in ("NO_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    monkeypatch.delenv("http_proxy", raising=False)
    monkeypatch.setenv("HTTP_PROXY", proxy)
    return proxy


def test_the_proxy_environment_is_honoured(server: IntegrationServer, dead_proxy: str,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """HTTP_PROXY is used (the dead proxy refuses), and NO_PROXY exempts the host, as in plain requests."""
    with pytest.raises(requests.exceptions.ProxyError):
        EnvironmentOnceSession().get(f"{server.url}/objects/supplier", headers=AUTH, timeout=5)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    resp = EnvironmentOnceSession().get(f"{server.url}/objects/supplier", headers=AUTH, timeout=5)
    assert resp.status_code == 200 and resp.json()["records"][0]["id"] == "r1"


def test_the_environment_is_read_once_per_host(server: IntegrationServer, dead_proxy: str,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """A session keeps the settings it read for a host; an explicit per-request setting still wins."""
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    session = EnvironmentOnceSession()
    url = f"{server.url}/objects/supplier"
    assert session.get(url, headers=AUTH, timeout=5).status_code == 200
    monkeypatch.delenv("NO_PROXY")  # the dead proxy would now apply to a fresh read
    for _ in range(3):
        assert session.get(url, headers=AUTH, timeout=5).status_code == 200
    with pytest.raises(requests.exceptions.ProxyError):
        session.get(url, headers=AUTH, timeout=5, proxies={"http": dead_proxy})
    assert len(server.state.fetches) == 4
