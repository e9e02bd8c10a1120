"""What the kiosk's loop (kiosk/service.py) needs from its outbox and its publisher.

The loop decides: which presses become ratings, their time, their picture, the remote settings
and the certificate in use. Storage and delivery are behind these two ports, so that logic is
tested with :class:`kiosk.publisher.OfflinePublisher` (no broker) as well as with the real
:class:`kiosk.publisher.MqttPublisher`. The real publisher reads the outbox file itself on its own
thread (``SqliteOutbox`` at ``settings.outbox_path``).
"""

from __future__ import annotations

from typing import Protocol

from kiosk.outbox import Backlog, StoredPress


class Outbox(Protocol):
    install_id: str

    @property
    def suppressed_presses(self) -> int: ...
    def last_press_epoch(self) -> float | None: ...
    def record_press(
        self,
        *,
        counter: str,
        score: int,
        flag: str | None,
        pressed_epoch: float,
        clock: str,
        boot_id: str,
        since_boot_s: float,
        fw: str,
        snapshot_state: str,
        snapshot_error: str | None = None,
    ) -> StoredPress: ...
    def count_suppressed(self, presses: int = 1) -> None: ...
    def attach_snapshot(self, rating_id: str, *, path: str, sha256: str, nbytes: int, taken_epoch: float) -> bool: ...
    def fail_snapshot(self, rating_id: str, error: str) -> bool: ...
    def expire_pending_snapshots(self, *, boot_id: str, since_boot_s: float, error: str) -> int: ...
    def drop_snapshot_files(self, max_bytes: int) -> list[str]: ...
    def correct_unsynced(self, *, boot_id: str, wall_minus_boot_s: float) -> int: ...
    def backlog(self) -> Backlog: ...
    def prune(self, *, older_than_epoch: float) -> int: ...
    def close(self) -> None: ...


class Publisher(Protocol):
    last_error: str | None
    status_interval_s: float

    @property
    def connected(self) -> bool: ...
    @property
    def generation(self) -> int: ...
    def start(self) -> None: ...
    def stop(self) -> None: ...
    def wake(self) -> None:
        """Something new is in the outbox."""

    def send_csr(self, payload: bytes) -> bool: ...
    def use_certificate(self, cert: str, key: str) -> None: ...
