"""How many long-lived streams (the /live feed, cot-serve) each user holds open in this process.

A stolen token or a runaway client must not hold an unbounded number of connections (each one a
poll of the database every second): a user over the cap is refused until one of theirs closes.
The counts are per process, like the streams themselves."""

from __future__ import annotations

import threading
from collections import Counter

from core.errors import TooManyRequests


class TooManyStreams(TooManyRequests):
    code = "too_many_streams"


class StreamSlot:
    """One open stream of a user: released once, whether by its stream ending or by being dropped."""

    def __init__(self, slots: StreamSlots, username: str) -> None:
        self._slots, self.username, self._held = slots, username, True

    def release(self) -> None:
        if self._held:
            self._held = False
            self._slots._release(self.username)

    def __del__(self) -> None:
        # A stream whose response never started (the client went away first) still gives its slot back.
        self.release()


class StreamSlots:
    def __init__(self, kind: str, setting: str) -> None:
        self.kind, self.setting = kind, setting
        self._open: Counter[str] = Counter()
        self._lock = threading.Lock()

    def acquire(self, username: str, limit: int) -> StreamSlot:
        """A slot for one more stream of ``username``; ``TooManyStreams`` (429) when they hold ``limit``."""
        with self._lock:
            if self._open[username] >= limit:
                raise TooManyStreams(
                    f"user {username} already has {limit} open {self.kind} streams (at most {limit}, "
                    f"{self.setting}); close one first",
                    retry_after=5,
                    limit=limit,
                )
            self._open[username] += 1
        return StreamSlot(self, username)

    def open(self, username: str) -> int:
        with self._lock:
            return self._open[username]

    def _release(self, username: str) -> None:
        with self._lock:
            self._open[username] -= 1
            if self._open[username] <= 0:
                del self._open[username]


LIVE_STREAMS = StreamSlots("live", "BW_LIVE_MAX_STREAMS_PER_USER")
COT_STREAMS = StreamSlots("CoT", "BW_COT_MAX_STREAMS_PER_USER")
