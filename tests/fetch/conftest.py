"""Fixtures for the fetch stage: a real HTTP(S) server on 127.0.0.1 and image factories."""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from pixelpipe.fetch import FetchPolicy

from .fakes import FakeHost, make_image, serve


@pytest.fixture
def png() -> bytes:
    return make_image("PNG", (64, 48))


@pytest.fixture
def host(png: bytes) -> Iterator[FakeHost]:
    yield from serve(FakeHost(png))


@pytest.fixture
def tls_host(png: bytes, tls_files: tuple[Path, Path]) -> Iterator[FakeHost]:
    cert, key = tls_files
    server = FakeHost(png)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    server.scheme = "https"
    yield from serve(server)


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for localhost / 127.0.0.1."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    san = x509.SubjectAlternativeName(
        [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(san, critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    folder = tmp_path_factory.mktemp("tls")
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(trust_env=False) as c:
        yield c


@pytest.fixture
async def tls_client(tls_files: tuple[Path, Path]) -> AsyncIterator[httpx.AsyncClient]:
    context = ssl.create_default_context(cafile=str(tls_files[0]))
    async with httpx.AsyncClient(trust_env=False, verify=context) as c:
        yield c


@pytest.fixture
def test_mode() -> FetchPolicy:
    return FetchPolicy(allow_http_and_loopback=True, timeout_s=5)


@pytest.fixture
def production() -> FetchPolicy:
    return FetchPolicy(timeout_s=5)
