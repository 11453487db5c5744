"""The ingest worker's MQTT client: paho-mqtt's client with a lean path for the message stream.

At thousands of detections a second the generic path of paho's network thread costs more than
the rest of the worker: a ``Properties`` object, an ``MQTTMessage`` and a topic-filter walk per
message, three socket reads and a ``select()`` per packet, and one packet, one queue entry and
one ``send()`` per acknowledgement. ``IngestClient`` keeps paho for everything (connection,
session, keep-alive, subscriptions, publications, reconnects) and changes three things:

* inbound QoS 1 PUBLISH packets without properties go straight to ``deliver(topic, payload,
  mid, qos)``; anything else (QoS 0/2, properties, topic aliases, malformed packets) takes paho's
  own path unchanged, so ``on_message`` still sees it;
* socket reads are buffered (64 KiB at a time), and every packet already in the buffer is
  handled before the next ``select()``: plain QoS 1 PUBLISHes are cut straight from the buffer,
  any other packet (or one not yet wholly read) goes through paho's reader;
* ``ack_many`` sends the acknowledgements of a whole batch as one write.

These use paho's internal methods of the 2.x series (``_handle_publish``, ``_sock_recv``,
``_packet_queue``); ``IngestClient.supported()`` checks that they are there, and the worker
falls back to the plain client otherwise.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable

import paho.mqtt.client as mqtt
from paho.mqtt.enums import MQTTErrorCode

_PUBACK = 0x40
_PUBACK_PACKET = struct.Struct("!BBH")
_READ_SIZE = 65536

# (topic, payload, mid, qos)
Deliver = Callable[[str, bytes, int, int], None]


class IngestClient(mqtt.Client):
    """paho's client with a lean inbound path for QoS 1 messages and batched acknowledgements."""

    _INTERNALS = ("_handle_publish", "_sock_recv", "_packet_queue", "_in_packet", "_sockpairW", "_protocol")

    def __init__(self, *args, deliver: Deliver, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._deliver = deliver
        self._rbuf = b""
        self._rpos = 0
        self._rsock = None

    @classmethod
    def supported(cls) -> bool:
        probe = mqtt.Client(callback_api_version=mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        return all(hasattr(probe, name) for name in cls._INTERNALS)

    # -- inbound --------------------------------------------------------------------------
    def _handle_publish(self) -> MQTTErrorCode:
        header = self._in_packet["command"]
        if (header & 0x06) >> 1 != 1 or self._protocol != mqtt.MQTTv5:
            return super()._handle_publish()
        packet = self._in_packet["packet"]
        try:
            topic_len = (packet[0] << 8) | packet[1]
            pos = 2 + topic_len
            mid = (packet[pos] << 8) | packet[pos + 1]
            props_len = packet[pos + 2]
            topic = bytes(packet[2 : 2 + topic_len]).decode("utf-8")
        except (IndexError, UnicodeDecodeError):
            return super()._handle_publish()  # paho reports it as it always does
        if props_len or not topic_len:
            # Properties (or a topic alias): paho's own decoding keeps their meaning.
            return super()._handle_publish()
        self._deliver(topic, bytes(packet[pos + 3 :]), mid, 1)
        return MQTTErrorCode.MQTT_ERR_SUCCESS

    def _sock_recv(self, bufsize: int) -> bytes:
        if self._rsock is not self._sock:
            # A new connection: nothing read from the old one belongs to it.
            self._rbuf, self._rpos, self._rsock = b"", 0, self._sock
        if self._rpos >= len(self._rbuf):
            self._rbuf = super()._sock_recv(_READ_SIZE)  # raises BlockingIOError when nothing waits
            self._rpos = 0
            if not self._rbuf:
                return self._rbuf  # the peer closed the connection
        start = self._rpos
        self._rpos = min(start + bufsize, len(self._rbuf))
        return self._rbuf[start : self._rpos]

    def loop_read(self, max_packets: int = 1) -> MQTTErrorCode:
        rc = super().loop_read(max_packets)
        # Whole packets already read into the buffer are handled now, not one select() each: plain
        # QoS 1 PUBLISHes straight from the buffer, anything else through paho's reader.
        while (
            rc == MQTTErrorCode.MQTT_ERR_SUCCESS
            and self._sock is not None
            and self._rsock is self._sock
            and self._rpos < len(self._rbuf)
        ):
            if self._in_packet["command"] == 0 and self._deliver_buffered():
                continue
            rc = self._packet_read()
            if rc > 0:
                return self._loop_rc_handle(rc)
            if rc == MQTTErrorCode.MQTT_ERR_AGAIN:
                return MQTTErrorCode.MQTT_ERR_SUCCESS
        return rc

    def _deliver_buffered(self) -> bool:
        """Deliver the whole QoS 1 PUBLISH packets without properties at the front of the read
        buffer; False when the next packet is anything else, or not all read yet (paho's reader
        takes it from there, byte for byte as it would have)."""
        buf, pos, end = self._rbuf, self._rpos, len(self._rbuf)
        start = pos
        deliver = self._deliver
        try:
            while pos < end:
                header = buf[pos]
                if header & 0xF6 != 0x32:  # PUBLISH, QoS 1 (DUP and RETAIN either way)
                    break
                length, mult, p = 0, 1, pos + 1
                while True:
                    byte = buf[p]
                    p += 1
                    length += (byte & 127) * mult
                    if not byte & 128:
                        break
                    mult *= 128
                    if mult > 2_097_152:
                        return False  # malformed: paho's reader reports it
                if p + length > end:
                    break  # not all read yet
                topic_end = p + 2 + ((buf[p] << 8) | buf[p + 1])
                if topic_end + 3 > p + length:
                    break  # shorter than its topic says: paho's reader reports it
                if topic_end == p + 2 or buf[topic_end + 2] != 0:
                    break  # a topic alias or properties: paho's decoding
                topic = buf[p + 2 : topic_end].decode("utf-8")
                deliver(topic, buf[topic_end + 3 : p + length], (buf[topic_end] << 8) | buf[topic_end + 1], 1)
                pos = p + length
        except (IndexError, UnicodeDecodeError):
            pass  # paho's reader takes this packet and reports what is wrong with it
        self._rpos = pos
        if pos == start:
            return False
        with self._msgtime_mutex:
            self._last_bytes_received = mqtt.time_func()
        return True

    # -- outbound -------------------------------------------------------------------------
    def ack_many(self, mids: Iterable[int]) -> None:
        """PUBACKs for QoS 1 messages, queued as one write and one wake-up of the network thread."""
        blob = b"".join([_PUBACK_PACKET.pack(_PUBACK, 2, mid) for mid in mids])
        if blob:
            self._packet_queue(_PUBACK, blob, 0, 0)
