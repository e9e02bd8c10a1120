"""Serves release files to kiosks over HTTPS, to kiosk certificates only, resumable.

``GET /releases/<version>/release.tar`` with an optional ``Range: bytes=N-`` (or ``N-M``): a kiosk
on a 3G link that loses the connection asks for the rest. The TLS handshake requires a client
certificate from the fleet CA that is not on the revocation list (re-read when the file changes),
whose CN is a kiosk in the registry. Nothing else is served. Standard library only
(``http.server``), one thread per download, the handshake in that thread so one slow kiosk does
not hold up the others.
"""

from __future__ import annotations

import logging
import re
import socket
import ssl
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from collector.config import CollectorSettings
from collector.fleet import FleetCA
from collector.registry import Registry
from kiosk.update import VERSION

log = logging.getLogger(__name__)

PATH = re.compile(r"\A/releases/(?P<version>[^/]+)/release\.tar\Z")
RANGE = re.compile(r"\Abytes=(?P<start>[0-9]{1,15})-(?P<end>[0-9]{0,15})\Z")
CHUNK = 64 * 1024
TIMEOUT_S = 120.0  # a kiosk silent this long is dropped (it resumes with a Range)
HANDSHAKE_S = 10.0  # a connection that has not finished TLS in this long is dropped
MAX_CLIENTS = 64  # downloads served at once; more are told to come back (kiosks retry)
MAX_CONNECTIONS = 256  # connections open at once, handshaking or downloading
MAX_PER_ADDRESS = 16  # … from one address (a commune's kiosks behind one NAT fit)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], owner: ReleaseServer) -> None:
        self.owner = owner
        super().__init__(address, _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        # Bounded connections, and fewer from one address: idle sockets from one place cannot take
        # every thread. A download slot is taken only once TLS and the kiosk's name are checked.
        if not self.owner.connection_opened(client_address[0]):
            self.shutdown_request(request)
            return
        super().process_request(request, client_address)

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.owner.connection_closed(client_address[0])

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.info("release download from %s ended with an error", client_address[0] if client_address else "?")

    def get_request(self) -> tuple[socket.socket, Any]:
        raw, address = self.socket.accept()
        raw.settimeout(HANDSHAKE_S)
        # The handshake happens in the request's own thread (on its first read), not here.
        wrapped = self.owner.context().wrap_socket(raw, server_side=True, do_handshake_on_connect=False)
        return wrapped, address


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"
    server_version = "kiosk-releases"

    def setup(self) -> None:
        self.kiosk = ""
        try:
            assert isinstance(self.request, ssl.SSLSocket)
            self.request.do_handshake()
        except (ssl.SSLError, OSError) as exc:
            log.info("release download refused at the TLS handshake: %s", exc)
            self.request.close()
            raise ConnectionAbortedError from exc
        self.request.settimeout(TIMEOUT_S)
        super().setup()
        cert: Any = self.request.getpeercert() or {}
        for rdn in cert.get("subject", ()):
            for key, value in rdn:
                if key == "commonName":
                    self.kiosk = str(value)

    def handle(self) -> None:
        try:
            super().handle()
        except (ConnectionError, TimeoutError, ssl.SSLError, OSError) as exc:
            log.info("release download by %s broken off: %s", self.kiosk or "?", exc)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        log.debug("release server: " + format, *args)

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self._serve(send_body=True)

    def do_HEAD(self) -> None:  # noqa: N802
        self._serve(send_body=False)

    def _serve(self, *, send_body: bool) -> None:
        owner = self.server.owner
        if self.kiosk not in owner.registry().kiosks:
            self._fail(403, f"{self.kiosk!r} is not a kiosk in the registry")
            return
        found = PATH.match(self.path)
        if found is None or not VERSION.match(found["version"]):
            self._fail(404, "no such file")
            return
        path = owner.releases_dir / found["version"] / "release.tar"
        try:
            size = path.stat().st_size
        except OSError:
            self._fail(404, f"no release {found['version']}")
            return
        start, end = 0, size - 1
        wanted = self.headers.get("Range")
        if wanted:
            parsed = RANGE.match(wanted.strip())
            if parsed is None:
                self._fail(416, "only Range: bytes=N- or bytes=N-M", size=size)
                return
            start = int(parsed["start"])
            end = min(int(parsed["end"]), size - 1) if parsed["end"] else size - 1
            if start >= size or start > end:
                self._fail(416, "range beyond the file", size=size)
                return
        length = end - start + 1
        if send_body and not owner.slots.acquire(blocking=False):
            self._fail(503, "busy: come back in a minute", retry_after=60)
            return
        try:
            self._send(path, found["version"], start, end, size, length, wanted=bool(wanted), send_body=send_body)
        finally:
            if send_body:
                owner.slots.release()

    def _send(
        self, path: Path, version: str, start: int, end: int, size: int, length: int, *, wanted: bool, send_body: bool
    ) -> None:
        owner = self.server.owner
        self.send_response(206 if wanted else 200)
        self.send_header("Content-Type", "application/x-tar")
        self.send_header("Content-Length", str(length))
        self.send_header("Accept-Ranges", "bytes")
        if wanted:
            self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        self.end_headers()
        if not send_body:
            return
        with path.open("rb") as fh:
            fh.seek(start)
            left = length
            while left > 0:
                block = fh.read(min(CHUNK, left))
                if not block:
                    break
                self.wfile.write(block)
                left -= len(block)
        owner.served(self.kiosk, version, start, length)

    def _fail(self, code: int, why: str, *, size: int | None = None, retry_after: int | None = None) -> None:
        body = (why + "\n").encode()
        self.send_response(code)
        if retry_after is not None:
            self.send_header("Retry-After", str(retry_after))
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        if size is not None:
            self.send_header("Content-Range", f"bytes */{size}")
        self.end_headers()
        self.wfile.write(body)


class ReleaseServer:
    def __init__(
        self,
        settings: CollectorSettings,
        load_registry: Callable[[], Registry],
        *,
        port: int | None = None,
        refresh_s: float = 30.0,
    ) -> None:
        """``load_registry`` is called on this server's own refresher thread only (a store
        connection belongs to one thread); downloads read the copy it keeps."""
        self.settings = settings
        self._load_registry = load_registry
        self._registry: Registry | None = None
        self._refresh_s = refresh_s
        self._stopping = threading.Event()
        self._refresher = threading.Thread(target=self._refresh, name="release-registry", daemon=True)
        self.ca = FleetCA(settings.data_dir / "fleet")
        self.releases_dir = settings.data_dir / "releases"
        update = settings.update
        self.cert = Path(update.tls_cert) if update.tls_cert else self.ca.folder / "broker.crt"
        self.key = Path(update.tls_key) if update.tls_key else self.ca.folder / "broker.key"
        self._context: ssl.SSLContext | None = None
        self._crl_mtime = -1.0
        self._lock = threading.Lock()
        self.slots = threading.BoundedSemaphore(MAX_CLIENTS)
        self._open: dict[str, int] = {}  # connections open per address
        self._open_lock = threading.Lock()
        self.downloads: list[tuple[str, str, int, int]] = []  # (kiosk, version, start, length), newest last
        self._server = _Server((update.host, update.port if port is None else port), self)
        self._thread = threading.Thread(target=self._server.serve_forever, name="release-server", daemon=True)

    def connection_opened(self, address: str) -> bool:
        with self._open_lock:
            if sum(self._open.values()) >= MAX_CONNECTIONS or self._open.get(address, 0) >= MAX_PER_ADDRESS:
                return False
            self._open[address] = self._open.get(address, 0) + 1
            return True

    def connection_closed(self, address: str) -> None:
        with self._open_lock:
            left = self._open.get(address, 0) - 1
            if left > 0:
                self._open[address] = left
            else:
                self._open.pop(address, None)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def context(self) -> ssl.SSLContext:
        """Kiosk certificates from the fleet CA only, checked against the current revocation list."""
        mtime = self.ca.crl.stat().st_mtime
        with self._lock:
            if self._context is None or mtime != self._crl_mtime:
                context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
                context.minimum_version = ssl.TLSVersion.TLSv1_2
                context.load_cert_chain(self.cert, self.key)
                context.verify_mode = ssl.CERT_REQUIRED
                context.load_verify_locations(cafile=self.ca.ca_crt)
                context.load_verify_locations(cafile=self.ca.crl)
                context.verify_flags |= ssl.VERIFY_CRL_CHECK_LEAF
                self._context, self._crl_mtime = context, mtime
            return self._context

    def served(self, kiosk: str, version: str, start: int, length: int) -> None:
        with self._lock:
            self.downloads = [*self.downloads[-999:], (kiosk, version, start, length)]
        log.info(
            "release served",
            extra={"kv": {"kiosk": kiosk, "version": version, "from": start, "bytes": length}},
        )

    def registry(self) -> Registry:
        return self._registry if self._registry is not None else Registry()

    def _refresh(self) -> None:
        while True:
            try:
                self._registry = self._load_registry()
            except Exception as exc:  # the store is away: keep the last registry, try again
                log.warning("release server: could not read the registry: %s", exc)
            if self._stopping.wait(self._refresh_s):
                return

    def start(self) -> None:
        self.context()  # a missing certificate or CA fails here, at start, not at the first kiosk
        self._refresher.start()
        self._thread.start()
        log.info("release server on %s:%d (%s)", self.settings.update.host or "*", self.port, self.releases_dir)

    def stop(self) -> None:
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
