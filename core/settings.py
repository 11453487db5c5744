"""One settings class for the whole service (environment prefix ``BW_``).

Values come from the environment first, then from ``.run/services.env`` that
``borderwatch services up`` writes for the project-local PostgreSQL and Mosquitto.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parent.parent


def run_dir() -> Path:
    return Path(os.environ.get("BW_RUN_DIR", REPO_ROOT / ".run"))


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="BW_",
        env_file=str(run_dir() / "services.env"),
        env_file_encoding="utf-8",
        extra="ignore",
    )

    database_url: str = ""
    test_database_url: str = ""
    mqtt_url: str = ""
    mqtt_api_url: str = ""
    mosquitto_dir: str = ""

    jwt_secret: str = ""
    jwt_algorithm: str = "HS256"
    access_token_minutes: int = 60

    # Topic root of the MQTT contract (docs/mqtt.md).
    mqtt_topic_root: str = "borderwatch/v1"
    ingest_share_group: str = "bw-ingest"
    ingest_client_id: str = "bw-ingest-1"
    # Micro-batches: whichever cap is reached first closes a batch.
    ingest_batch_size: int = 1000
    ingest_batch_ms: int = 20
    # How many unacknowledged QoS 1 messages the broker may send us at once.
    ingest_receive_maximum: int = 4000
    max_payload_bytes: int = 64 * 1024
    # Seconds during which one track raises at most one alert per segment or zone.
    alert_cooldown_s: int = 600
    # A track leg longer than this in time is not used to infer a crossing.
    track_max_gap_s: int = 3600
    border_buffer_m: float = 5000.0
    # Detections older than this are rejected as stale (clock errors, replays).
    max_detection_age_days: int = 30
    max_clock_skew_s: int = 300
    # `borderwatch retention` drops monthly detection partitions wholly older than this.
    detection_retention_days: int = 365
    # The ingest worker applies the retention policy this often (seconds; 0: only `borderwatch retention`).
    retention_interval_s: float = 0

    api_host: str = "127.0.0.1"
    api_port: int = 8000

    demo_gateways_file: str = Field(default_factory=lambda: str(run_dir() / "demo-gateways.json"))

    def mqtt_parts(self, url: str | None = None) -> tuple[str, int, str | None, str | None]:
        """Host, port, username and password of an ``mqtt://user:pw@host:port`` URL."""
        parts = urlsplit(url or self.mqtt_url)
        if parts.scheme not in ("mqtt", "tcp"):
            raise ValueError(f"MQTT URL must start with mqtt://, got {parts.scheme!r}")
        return parts.hostname or "127.0.0.1", parts.port or 1883, parts.username, parts.password


@lru_cache
def get_settings() -> Settings:
    return Settings()
