"""Test doubles for the fetch stage: a provider CDN on 127.0.0.1 and an image factory."""

from __future__ import annotations

import io
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from PIL import Image


def make_image(
    fmt: str = "PNG", size: tuple[int, int] = (64, 48), mode: str = "RGB", noise: bool = False
) -> bytes:
    """Encoded image bytes; ``noise`` makes it incompressible (useful to truncate)."""
    if noise:
        im = Image.frombytes("RGB", size, bytes(range(256)) * (size[0] * size[1] * 3 // 256 + 1))
        im = im.convert(mode)
    else:
        im = Image.new(mode, size, (200, 30, 30, 255)[: len(mode)] if mode != "L" else 128)
    buffer = io.BytesIO()
    im.save(buffer, format=fmt)
    return buffer.getvalue()


class FakeHost(ThreadingHTTPServer):
    """A tiny provider CDN: records every request path and serves canned answers."""

    daemon_threads = True

    def __init__(self, image: bytes) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.image = image
        self.requests: list[str] = []
        self.scheme = "http"

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"{self.scheme}://{host}:{self.port}{path}"


class _Handler(BaseHTTPRequestHandler):
    server: FakeHost
    protocol_version = "HTTP/1.1"  # keep-alive, so httpx pools connections

    def log_message(self, format: str, *args: object) -> None:  # quiet
        pass

    def do_GET(self) -> None:
        self.server.requests.append(self.path)
        route = _ROUTES.get(self.path.split("?", 1)[0])
        try:
            (route or _not_found)(self)
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
            self.close_connection = True

    def send(self, status: int, body: bytes = b"", **headers: str) -> None:
        self.send_response(status)
        named = {name.replace("_", "-"): value for name, value in headers.items()}
        named.setdefault("Content-Length", str(len(body)))
        for name, value in named.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def stream(self, chunk: bytes, count: int, pause: float, content_type: str) -> None:
        """A close-delimited body, written ``count`` times with ``pause`` seconds between."""
        self.close_connection = True
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Connection", "close")
        self.end_headers()
        for _ in range(count):
            self.wfile.write(chunk)
            self.wfile.flush()
            time.sleep(pause)


def _not_found(h: _Handler) -> None:
    h.send(404, b"gone", Content_Type="text/plain")


def _redirect(target: str | Callable[[_Handler], str]) -> Callable[[_Handler], None]:
    def route(h: _Handler) -> None:
        location = target if isinstance(target, str) else target(h)
        h.send(302, Location=location)

    return route


_ROUTES: dict[str, Callable[[_Handler], None]] = {
    "/image.png": lambda h: h.send(200, h.server.image, Content_Type="image/png"),
    "/octet": lambda h: h.send(200, h.server.image, Content_Type="application/octet-stream"),
    "/untyped": lambda h: h.send(200, h.server.image),
    "/html": lambda h: h.send(200, b"<html>login</html>", Content_Type="text/html"),
    "/expired": lambda h: h.send(403, b"AccessDenied", Content_Type="application/xml"),
    "/gone": lambda h: h.send(410, b""),
    "/unavailable": lambda h: h.send(503, b"try later"),
    "/teapot": lambda h: h.send(418, b""),
    "/redirect-ok": _redirect("/image.png"),
    "/redirect-metadata": _redirect("http://169.254.169.254/latest/meta-data/iam"),
    "/redirect-file": _redirect("file:///etc/passwd"),
    "/redirect-localhost": _redirect(lambda h: h.server.url("/image.png", host="localhost")),
    "/redirect-loop": _redirect("/redirect-loop"),
    "/declared-huge": lambda h: h.send(
        200, b"", Content_Type="image/png", Content_Length=str(50 * 1024 * 1024)
    ),
    "/stream-huge": lambda h: h.stream(b"\0" * 65536, 64, 0, "image/png"),
    "/slow": lambda h: h.stream(b"\0" * 16, 30, 0.1, "image/png"),
}


def serve(server: FakeHost) -> Iterator[FakeHost]:
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
