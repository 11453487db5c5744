"""The ingest worker: MQTT detections in micro-batches -> one transaction -> acknowledgement.

Each batch: validate payloads (bad ones become dead letters with their reason), insert the new
detections (a resent event id is skipped), geofence them in one statement, commit, and only then
acknowledge the batch's messages and publish its alerts. If the database is down nothing is
acknowledged and the batch is retried with back-off, so the broker keeps it.

Three stages overlap: one thread cuts and validates micro-batches, a pool inserts the next
batches' detections (``ingest_stage_ahead`` of them, each in a transaction of its own) while the
main thread geofences and commits the oldest one. Batches commit one at a time and in order, so
each sees the track positions of the one before.
"""

from __future__ import annotations

import gc
import logging
import queue
import threading
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError, OperationalError

from alerts import publish
from core import topics
from core.db import session_scope
from core.settings import Settings
from sensors import ais, retention, service
from sensors.batches import Ahead, BatchProcessor, BatchResult, Message, ParsedBatch, StagedBatch
from sensors.mqtt_client import IngestClient

log = logging.getLogger("borderwatch.ingest")

_PARTITION_CHECK_S = 3600.0


class IngestWorker:
    """Runs the MQTT client and the batch loop until ``stop()``."""

    def __init__(self, settings: Settings, engine: Engine, *, client_id: str | None = None) -> None:
        self.settings = settings
        self.processor = BatchProcessor(settings, engine)
        self.client_id = client_id or settings.ingest_client_id
        self._queue: deque[Message] = deque()
        # Parsed batches wait here while the ones before are in the database.
        self._parsed: queue.Queue[ParsedBatch] = queue.Queue(maxsize=settings.ingest_stage_ahead)
        # Committed batches' messages to acknowledge and alerts to publish, in commit order (a
        # thread of their own, so the next batch's transaction starts at once); None ends it.
        self._outbox: queue.SimpleQueue[tuple[list[Message], list[dict]] | None] = queue.SimpleQueue()
        self._cond = threading.Condition()
        # True while the commit stage waits for a batch with none in the database (under _cond).
        self._idle = False
        self._stop = threading.Event()
        self._generation = 0
        self._connected = threading.Event()
        self._filters = topics.ingest_subscriptions(settings.mqtt_topic_root, settings.ingest_share_group)
        # Filters the broker session still holds from an earlier run with other settings.
        self._stale: list[str] = []
        self._unsubscribed = threading.Event()
        self.failed = False
        self.connecting_since: float | None = None
        self.totals = {"messages": 0, "stored": 0, "duplicates": 0, "dead": 0, "alerts": 0, "batches": 0}
        self.client = self._make_client()

    def _make_client(self) -> mqtt.Client:
        host, port, user, password = self.settings.mqtt_parts()
        options = dict(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=self.client_id,
            protocol=mqtt.MQTTv5,
            manual_ack=True,
        )
        # The lean inbound path where this paho has the internals it relies on; paho's own otherwise.
        client = IngestClient(deliver=self._deliver, **options) if IngestClient.supported() else mqtt.Client(**options)
        if user:
            client.username_pw_set(user, password)
        status_topic = topics.worker_status(self.settings.mqtt_topic_root, self.client_id)
        client.will_set(status_topic, b'{"status":"offline"}', qos=1, retain=True)
        client.reconnect_delay_set(min_delay=1, max_delay=30)
        # 0 = no client-side window for our alert publications (paho rescans its queue per PUBACK otherwise).
        client.max_inflight_messages_set(0)
        client.max_queued_messages_set(0)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_unsubscribe = lambda *args: self._unsubscribed.set()
        self._address = (host, port)
        return client

    # -- MQTT callbacks (network thread) -------------------------------------------------
    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            log.error("broker refused the connection: %s", reason_code)
            return
        with self._cond:
            self._generation += 1
            # Messages of an earlier connection can no longer be acknowledged; the broker redelivers them.
            self._queue.clear()
        with self._parsed.mutex:
            self._parsed.queue.clear()
        if self._stale:
            # The session outlives the worker: drop what it no longer wants, or it gets each message twice.
            client.unsubscribe(self._stale)
        options = SubscribeOptions(qos=1)
        client.subscribe([(t, options) for t in self._filters])
        client.publish(
            topics.worker_status(self.settings.mqtt_topic_root, self.client_id),
            b'{"status":"online"}',
            qos=1,
            retain=True,
        )
        self._connected.set()
        log.info("connected to %s:%s (session present: %s)", *self._address, flags.session_present)

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        self._connected.clear()
        if not self._stop.is_set():
            log.warning("disconnected from the broker (%s); reconnecting", reason_code)

    def _on_message(self, client, userdata, msg) -> None:
        self._deliver(msg.topic, msg.payload, msg.mid, msg.qos)

    def _deliver(self, topic: str, payload: bytes, mid: int, qos: int) -> None:
        with self._cond:
            self._queue.append(Message(topic, payload, mid, qos, self._generation))
            # Wake the batcher for the first message (starts the time cap) and when a batch is full.
            if len(self._queue) in (1, self.settings.ingest_batch_size):
                self._cond.notify()

    # -- batch loop -----------------------------------------------------------------------
    def _take(self) -> list[Message]:
        size = self.settings.ingest_batch_size
        with self._cond:
            if not self._queue:
                self._cond.wait(timeout=0.25)
                if not self._queue:
                    return []
            # A batch grows while the database is busy with the one before, up to the size and time
            # caps; when nothing is in the database it leaves at once (low latency at low rates, big
            # batches under load).
            deadline = time.monotonic() + self.settings.ingest_batch_ms / 1000
            while len(self._queue) < size and not self._idle:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._stop.is_set():
                    break
                self._cond.wait(timeout=remaining)
            return [self._queue.popleft() for _ in range(min(size, len(self._queue)))]

    def _set_idle(self, idle: bool) -> None:
        with self._cond:
            self._idle = idle
            if idle:
                self._cond.notify()

    def _parse_loop(self) -> None:
        """Stage 1: cut micro-batches and validate them while the database works on the previous one."""
        try:
            self._parse_batches()
        except Exception:
            # Unacknowledged messages stay with the broker; a supervisor restarts the worker.
            log.exception("the parse stage failed; stopping the worker")
            self.failed = True
            self.stop()

    def _parse_batches(self) -> None:
        while not self._stop.is_set():
            batch = self._take()
            if not batch:
                continue
            parsed = self._parse_with_retry(batch)
            if parsed is None:
                continue
            while not self._stop.is_set():
                try:
                    self._parsed.put(parsed, timeout=0.25)
                    break
                except queue.Full:
                    continue

    def _parse_with_retry(self, batch: list[Message]) -> ParsedBatch | None:
        """Parsing reads the sensor registry; while the database is down, wait and try again."""
        delay = 0.1
        while not self._stop.is_set():
            try:
                return self.processor.parse(batch)
            except (OperationalError, DBAPIError) as exc:
                log.warning("registry unavailable (%s); retrying in %.1f s", exc.__class__.__name__, delay)
                self._stop.wait(delay)
                delay = min(delay * 2, 10.0)
                if batch[0].generation != self._generation:
                    return None  # the broker will redeliver these after the reconnect
        return None

    def _handle(self, current: Ahead, ahead: deque[Ahead]) -> None:
        """Stage 3: finish the batch's transaction (or, if it could not be staged, run it from
        scratch with retries while the database is down), then hand its messages and alerts to be
        acknowledged and published (`_post_loop`).
        ``ahead`` are the next batches, in order, being stored meanwhile on other connections."""
        staged = current.future.result()
        result = None
        if staged.session is not None:
            try:
                result = self.processor.finish(staged)
            except (OperationalError, DBAPIError) as exc:
                log.warning(
                    "batch of %d could not be committed (%s); retrying it from scratch",
                    len(staged.parsed.messages),
                    exc.__class__.__name__,
                )
        if result is None:
            # A batch stored ahead that carries an event of this one (a redelivery) holds its key,
            # and would keep this one waiting while it waits for it: roll such batches back (and those
            # sharing events with them, which may be waiting on them), in order; a batch only waits
            # on the ones before it (``_stage_ahead``). They are stored again in their turn.
            linked, doomed = set(current.keys), set()
            while True:
                more = {i for i, a in enumerate(ahead) if i not in doomed and not linked.isdisjoint(a.keys)}
                if not more:
                    break
                doomed |= more
                for i in more:
                    linked |= ahead[i].keys
            for i in sorted(doomed):
                ahead[i].future.result().unstage()
            result = self._commit_with_retry(staged.parsed)
            if result is None:
                return
        self._outbox.put((staged.parsed.messages, result.alerts))
        t = self.totals
        t["messages"] += len(staged.parsed.messages)
        t["stored"] += result.stored
        t["duplicates"] += result.duplicates
        t["dead"] += result.dead
        t["alerts"] += len(result.alerts)
        t["batches"] += 1

    def _stage_ahead(self, storer: ThreadPoolExecutor, parsed: ParsedBatch, pending: deque[Ahead]) -> Ahead:
        """Store ``parsed`` on the pool, unless it carries an event that a batch before it, still being
        stored, carries too (a redelivery): stored at the same time, the later batch could take the
        event's key first and the earlier one would wait for a commit that waits for it. Such a batch
        is stored when its turn comes, after the ones before it committed."""
        keys = {(r["sensor_id"], r["event_id"]) for r in parsed.rows}
        if any(not a.future.done() and not keys.isdisjoint(a.keys) for a in pending):
            future: Future[StagedBatch] = Future()
            future.set_result(StagedBatch(parsed))
        else:
            future = storer.submit(self.processor.try_stage, parsed)
        return Ahead(future, keys)

    def _commit_with_retry(self, parsed: ParsedBatch) -> BatchResult | None:
        """One transaction for the batch, retried with back-off while the database is down; None if
        the worker stops or reconnects meanwhile (the broker then redelivers the batch)."""
        delay = 0.1
        isolate = False
        while True:
            try:
                return self._isolate(parsed.messages) if isolate else self.processor.commit(parsed)
            except (OperationalError, DBAPIError) as exc:
                if (
                    isinstance(exc, DBAPIError)
                    and not isinstance(exc, OperationalError)
                    and not exc.connection_invalidated
                ):
                    log.error(
                        "batch of %d refused by the database (%s); isolating the message at fault",
                        len(parsed.messages),
                        exc,
                    )
                    isolate = True
                    continue
                log.warning("database unavailable (%s); retrying the batch in %.1f s", exc.__class__.__name__, delay)
                if self._stop.wait(delay):
                    return None
                delay = min(delay * 2, 10.0)
                if parsed.messages[0].generation != self._generation:
                    return None

    def _isolate(self, batch: list[Message]) -> BatchResult:
        """A batch the database refused as data: process one by one, dead-lettering what fails.
        An outage meanwhile raises ``OperationalError`` and the caller retries the whole batch."""
        total = BatchResult()
        for msg in batch:
            try:
                part = self.processor.process([msg])
            except OperationalError:
                raise
            except DBAPIError as err:
                reason = f"refused by the database: {str(err.orig).splitlines()[0] if err.orig else err}"
                with session_scope(self.processor.engine) as session:
                    service.record_dead_letters(session=session, letters=[(msg.topic, msg.payload, reason)])
                total.dead += 1
                continue
            total.stored += part.stored
            total.duplicates += part.duplicates
            total.dead += part.dead
            total.alerts += part.alerts
        return total

    def _post_loop(self) -> None:
        """Acknowledge committed batches and publish their alerts, in the order they committed."""
        while (item := self._outbox.get()) is not None:
            messages, alerts = item
            try:
                self._acknowledge(messages)
                self._publish_alerts(alerts)
            except Exception:
                # unacknowledged messages come again after a reconnect, and are stored once
                log.exception("acknowledging or publishing a committed batch failed")

    def _acknowledge(self, batch: list[Message]) -> None:
        # Under the lock _on_connect takes: a reconnect cannot slip between the check and the acks.
        with self._cond:
            mids = [(m.mid, m.qos) for m in batch if m.qos > 0 and m.generation == self._generation]
            self._send_acks(mids)

    def _send_acks(self, mids: list[tuple[int, int]]) -> None:
        if isinstance(self.client, IngestClient):
            self.client.ack_many(mid for mid, qos in mids if qos == 1)
            mids = [(mid, qos) for mid, qos in mids if qos != 1]
        for mid, qos in mids:
            self.client.ack(mid, qos)

    def _write_seen(self) -> None:
        try:
            self.processor.write_seen()
        except (OperationalError, DBAPIError) as exc:
            log.warning("could not record when sensors were last seen (%s); later", exc.__class__.__name__)

    def _publish_alerts(self, alerts: list[dict]) -> None:
        publish.publish_alerts(self.client, root=self.settings.mqtt_topic_root, alerts=alerts)

    def _load_session_filters(self) -> None:
        with session_scope(self.processor.engine) as session:
            previous = service.session_filters(session=session, client_id=self.client_id)
            if not previous:
                # Nothing recorded yet: the session may hold the earlier default, the shared group
                # "bw-ingest" (unsubscribing a filter the session does not hold is harmless).
                previous = set(topics.ingest_subscriptions(self.settings.mqtt_topic_root, "bw-ingest"))
            self._stale = sorted(previous - set(self._filters))
            if not self._stale:
                service.record_session_filters(session=session, client_id=self.client_id, filters=self._filters)

    def _record_session_filters(self) -> None:
        """Once the broker confirmed the unsubscription, the session holds just our filters."""
        try:
            with session_scope(self.processor.engine) as session:
                service.record_session_filters(session=session, client_id=self.client_id, filters=self._filters)
            self._stale = []
        except (OperationalError, DBAPIError) as exc:
            log.warning("could not record the session's subscriptions (%s); later", exc.__class__.__name__)

    def run(self) -> None:
        """Connect and process until ``stop()``; reconnects and retries on its own."""
        self.processor.ensure_partitions()
        self._load_session_filters()
        # What is alive now (modules, SQLAlchemy and pydantic machinery, caches) lives as long as the
        # worker: out of the collector's sight, a full collection scans only what batches allocate
        # instead of the whole heap, which paused every thread for tens of milliseconds.
        gc.collect()
        gc.freeze()
        host, port = self._address
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = 7 * 24 * 3600
        props.ReceiveMaximum = self.settings.ingest_receive_maximum
        self.connecting_since = time.perf_counter()  # set up; from here on, the broker and the batches
        self.client.connect_async(host, port, keepalive=30, clean_start=False, properties=props)
        self.client.loop_start()
        last_partition_check = last_sweep = time.monotonic()
        parser = threading.Thread(target=self._parse_loop, name="bw-ingest-parse", daemon=True)
        parser.start()
        poster = threading.Thread(target=self._post_loop, name="bw-ingest-post", daemon=True)
        poster.start()
        if self.settings.retention_interval_s > 0:
            retention.start_timer(
                self.processor.engine,
                interval_s=self.settings.retention_interval_s,
                keep_days=self.settings.detection_retention_days,
                min_days=self.settings.max_detection_age_days,
                stop=self._stop,
                dead_letter_days=self.settings.dead_letter_retention_days,
            )
        # Stage 2 stores the next batches, each on its own connection, while stage 3 commits the
        # oldest; batches commit in the order they were cut.
        depth = self.settings.ingest_stage_ahead
        storer = ThreadPoolExecutor(max_workers=depth, thread_name_prefix="bw-ingest-store")
        pending: deque[Ahead] = deque()
        try:
            while not self._stop.is_set():
                while len(pending) <= depth:
                    try:
                        if pending:
                            parsed = self._parsed.get_nowait()
                        else:
                            self._set_idle(True)
                            parsed = self._parsed.get(timeout=0.25)
                            self._set_idle(False)
                    except queue.Empty:
                        if not pending:
                            self._write_seen()  # the stream paused
                        break
                    pending.append(self._stage_ahead(storer, parsed, pending))
                if pending:
                    self._handle(pending.popleft(), pending)
                if self._stale and self._unsubscribed.is_set():
                    self._record_session_filters()
                if time.monotonic() - last_partition_check > _PARTITION_CHECK_S:
                    try:
                        self.processor.ensure_partitions()
                        last_partition_check = time.monotonic()
                    except (OperationalError, DBAPIError) as exc:
                        log.warning("could not check detection partitions (%s); later", exc.__class__.__name__)
                # time-based rules (AIS gaps, sensors offline)
                if time.monotonic() - last_sweep > self.settings.analytics_sweep_s:
                    last_sweep = time.monotonic()
                    self._outbox.put(
                        (
                            [],
                            self.processor.rules.sweep(
                                self.processor.engine,
                                also=lambda session: ais.expire_fragments(session=session, settings=self.settings),
                            ),
                        )
                    )
        finally:
            for a in pending:
                a.future.result().unstage()  # not acknowledged: the broker redelivers these
            self._write_seen()
            storer.shutdown()
            parser.join(timeout=5)
            self._outbox.put(None)  # what committed is acknowledged before the client goes
            poster.join(timeout=10)
            self.client.publish(
                topics.worker_status(self.settings.mqtt_topic_root, self.client_id),
                b'{"status":"offline"}',
                qos=1,
                retain=True,
            )
            self.client.disconnect()
            self.client.loop_stop()

    def stop(self) -> None:
        self._stop.set()
        with self._cond:
            self._cond.notify_all()

    def wait_connected(self, timeout: float) -> bool:
        return self._connected.wait(timeout)
