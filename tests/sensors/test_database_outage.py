"""A database outage: nothing is acknowledged, the batch is retried with back-off, and once the
database is back every message is stored exactly once. The outage is a real cut of the TCP
connections between a real ingest worker process and PostgreSQL (a proxy in between)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from urllib.parse import urlsplit, urlunsplit

import orjson
import pytest

from core import topics
from tests.broker_roots import topic_root_on_broker
from tests.conftest import REPO_ROOT, detection, mqtt_client, scalar, unique, wait_for

pytestmark = pytest.mark.e2e


class TcpProxy:
    """Forwards 127.0.0.1:<port> to a target; ``cut()`` drops every connection and refuses new ones."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.open = True
        self.sockets: list[socket.socket] = []
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if not self.open:
                client.close()
                continue
            try:
                upstream = socket.create_connection(self.target)
            except OSError:
                client.close()
                continue
            with self.lock:
                self.sockets += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def cut(self) -> None:
        self.open = False
        with self.lock:
            for s in self.sockets:
                try:
                    s.shutdown(socket.SHUT_RDWR)
                    s.close()
                except OSError:
                    pass
            self.sockets.clear()

    def restore(self) -> None:
        self.open = True

    def close(self) -> None:
        self.cut()
        self.listener.close()


def test_database_outage_loses_nothing_and_doubles_nothing(settings, engine, make_gateway):
    gw = make_gateway()
    sensor = next(iter(gw.sensors))
    db = urlsplit(settings.database_url)
    proxy = TcpProxy((db.hostname, db.port))
    proxied = urlunsplit(db._replace(netloc=f"{db.username}:{db.password}@127.0.0.1:{proxy.port}"))
    root = f"borderwatch/outage-{uuid.uuid4().hex[:6]}"
    client_id = unique("bw-ingest-outage")
    log_path = REPO_ROOT / ".run" / "test" / f"{client_id}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "BW_DATABASE_URL": proxied,
        "BW_INGEST_DATABASE_URL": proxied,
        "BW_MQTT_TOPIC_ROOT": root,
        "BW_INGEST_SHARE_GROUP": client_id,
        "BW_INGEST_CLIENT_ID": client_id,
    }
    with topic_root_on_broker(settings, engine, root, gw.id):
        with open(log_path, "wb") as log:
            worker = subprocess.Popen(
                [sys.executable, "-m", "cli", "ingest"], env=env, stdout=log, stderr=subprocess.STDOUT
            )
        publisher = mqtt_client(settings, gw.id, gw.password)
        topic = topics.detections(root, gw.agency, gw.id, sensor)
        stored = lambda: scalar(engine, "SELECT count(*) FROM detections WHERE sensor_id = :s", s=sensor)  # noqa: E731
        try:
            wait_for(lambda: b"connected to" in log_path.read_bytes(), timeout=30)

            def publish(n: int) -> None:
                infos = [
                    publisher.publish(topic, orjson.dumps(detection(sensor, 100.42, 6.62)), qos=1) for _ in range(n)
                ]
                for info in infos:
                    info.wait_for_publish(10)

            publish(200)
            wait_for(lambda: stored() == 200)
            proxy.cut()
            publish(300)
            wait_for(
                lambda: (
                    b"database unavailable" in log_path.read_bytes() or b"registry unavailable" in log_path.read_bytes()
                ),
                timeout=20,
            )
            time.sleep(2.0)
            during = stored()
            assert worker.poll() is None, "the worker must survive the outage"
            proxy.restore()
            wait_for(lambda: stored() == 500, timeout=60)
            time.sleep(1.0)
            assert during == 200
            assert stored() == 500
            assert (
                scalar(engine, "SELECT count(DISTINCT event_id) FROM detections WHERE sensor_id = :s", s=sensor) == 500
            )
        finally:
            publisher.loop_stop()
            publisher.disconnect()
            worker.terminate()
            worker.wait(15)
            proxy.close()
