"""The kiosk process killed right after a press: the rating is still delivered, once."""

import os
import signal
import sqlite3
import subprocess
import sys

import pytest

from tests.conftest import wait_for


def start_kiosk(config, log):
    return subprocess.Popen(
        [sys.executable, "-m", "kiosk.cli", "run", "--fake-hardware", "--config", str(config)],
        stdin=subprocess.PIPE,
        stdout=log,
        stderr=subprocess.STDOUT,
    )


def outbox_rows(path):
    if not path.exists():
        return []
    db = sqlite3.connect(path, timeout=5)
    try:
        return db.execute("SELECT seq, id, acked_epoch FROM ratings ORDER BY seq").fetchall()
    except sqlite3.OperationalError:
        return []
    finally:
        db.close()


@pytest.mark.slow
def test_sigkill_right_after_a_press_loses_nothing_and_doubles_nothing(tmp_path, broker, collector):
    collector.acking = False
    data = tmp_path / "kiosk"
    config = tmp_path / "kiosk.toml"
    config.write_text(
        f'kiosk_id = "k-crash"\ncounter = "vb-q1"\ndata_dir = "{data}"\n'
        f'[mqtt]\nhost = "127.0.0.1"\nport = {broker.port}\n'
        f"[panel]\nlockout_s = 0.5\n[clock]\nassume_synced = true\n"
        f"[outbox]\nack_timeout_s = 2\n"
    )
    log = open(tmp_path / "kiosk.log", "wb")
    proc = start_kiosk(config, log)
    for n, key in enumerate(b"1243", start=1):
        proc.stdin.write(bytes([key]) + b"\n")
        proc.stdin.flush()
        assert wait_for(lambda n=n: len(outbox_rows(data / "outbox.db")) == n, 15), (tmp_path / "kiosk.log").read_text()
        wait_for(lambda: False, 0.6)  # past the lock-out
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert len(outbox_rows(data / "outbox.db")) == 4

    collector.acking = True
    proc = start_kiosk(config, log)
    try:
        proc.stdin.write(b"2\n")
        proc.stdin.flush()
        assert wait_for(lambda: len(collector.unique()) == 5, 30), (tmp_path / "kiosk.log").read_text()
        assert wait_for(lambda: all(r[2] for r in outbox_rows(data / "outbox.db")), 15)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=15)
    ratings = sorted(collector.unique().values(), key=lambda r: r.seq)
    assert [r.seq for r in ratings] == [1, 2, 3, 4, 5]
    assert [r.score for r in ratings] == [4, 3, 1, 2, 3]
    assert len({r.install for r in ratings}) == 1
