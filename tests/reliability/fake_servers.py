"""Hostile or odd HTTP(S) servers on loopback, recording every byte they receive.

For the paths a real org never takes: a login host on plain HTTP, a token reply that
points at a plain-HTTP instance, a server that drips its answer one byte a second.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

import trustme

# (request head + body as received, the connection) -> bytes to send (or None: handled)
Responder = Callable[[bytes, socket.socket], bytes | None]


class FakeServer:
    """A one-thread-per-connection server on 127.0.0.1; ``received`` holds every byte read."""

    def __init__(self, respond: Responder, *, tls: bool, ca_dir: Path | None = None) -> None:
        self._respond = respond
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.2)
        self.port = int(self._listener.getsockname()[1])
        self.received = bytearray()
        self.connections = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._context: ssl.SSLContext | None = None
        self.ca_path: Path | None = None
        if tls:
            ca = trustme.CA()
            cert = ca.issue_cert("localhost", "127.0.0.1")
            self._context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            cert.configure_cert(self._context)
            assert ca_dir is not None, "a TLS fake server needs a directory for its CA"
            self.ca_path = ca_dir / f"fake-ca-{self.port}.pem"
            ca.cert_pem.write_to_path(str(self.ca_path))
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"{'https' if self._context else 'http'}://127.0.0.1:{self.port}"

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except (TimeoutError, OSError):
                continue
            with self._lock:
                self.connections += 1
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, raw: socket.socket) -> None:
        conn = raw
        try:
            if self._context is not None:
                conn = self._context.wrap_socket(raw, server_side=True)
            conn.settimeout(10)
            data = self._read_request(conn)
            if data is None:
                return
            answer = self._respond(data, conn)
            if answer is not None:
                conn.sendall(answer)
        except (OSError, ssl.SSLError):
            pass
        finally:
            with contextlib.suppress(OSError):
                conn.close()

    def _read_request(self, conn: socket.socket) -> bytes | None:
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(65536)
            if not chunk:
                self._record(data)
                return None
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value.strip())
        while len(body) < length:
            chunk = conn.recv(65536)
            if not chunk:
                break
            body += chunk
        request = head + b"\r\n\r\n" + body
        self._record(request)
        return request

    def _record(self, data: bytes) -> None:
        with self._lock:
            self.received.extend(data)

    def stop(self) -> None:
        self._stop.set()
        self._listener.close()
        self._thread.join(timeout=5)

    def __enter__(self) -> FakeServer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def json_answer(body: str, status: str = "200 OK") -> bytes:
    data = body.encode()
    return (
        f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(data)}\r\nConnection: close\r\n\r\n"
    ).encode() + data


def dripping(body: bytes, *, head_first: bool, every_s: float = 1.0) -> Responder:
    """Answer one byte at a time, ``every_s`` apart (the headers too unless ``head_first``)."""

    def respond(_request: bytes, conn: socket.socket) -> None:
        head = (
            f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode()
        if head_first:
            conn.sendall(head)
            rest = body
        else:
            rest = head + body
        for index in range(len(rest)):
            conn.sendall(rest[index : index + 1])
            time.sleep(every_s)

    return respond
