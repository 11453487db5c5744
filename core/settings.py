"""One settings class for the whole service (environment prefix ``BW_``).

Values come from the environment first, then from ``.run/services.env`` that
``borderwatch services up`` writes for the project-local PostgreSQL and Mosquitto.
"""

from __future__ import annotations

import ipaddress
import os
from functools import lru_cache
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import Field, field_validator
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

    # Database roles (docs/security.md#database-roles): the API (and the admin commands) connect
    # with database_url, the ingest worker with ingest_database_url, and `borderwatch migrate` (and
    # `retention`) with owner_database_url, the role that owns the tables. The runtime roles own
    # nothing: they cannot rewrite the audit trail or the custody chains. Unset URLs fall back to
    # database_url: one role for everything, which leaves the audit trail unprotected.
    database_url: str = ""
    ingest_database_url: str = ""
    owner_database_url: str = ""
    test_database_url: str = ""
    # The runtime roles the migrations grant their rights to (each only if it exists).
    db_api_role: str = Field(default="borderwatch_api", pattern=r"^[a-z_][a-z0-9_]{0,62}$")
    db_ingest_role: str = Field(default="borderwatch_ingest", pattern=r"^[a-z_][a-z0-9_]{0,62}$")

    # Signed checkpoints of the audit chain (audit/checkpoints.py): the Ed25519 private key, kept
    # outside the database (mode 0600; `borderwatch audit keygen`), the name this node signs
    # under, and how often `borderwatch audit checkpoint --every` signs the head by default.
    audit_key_file: str = Field(default_factory=lambda: str(run_dir() / "audit" / "signing.key"))
    audit_node: str = ""
    audit_checkpoint_interval_s: float = Field(default=300.0, gt=0)
    mqtt_url: str = ""
    mqtt_api_url: str = ""
    mosquitto_dir: str = ""

    jwt_secret: str = ""
    jwt_algorithm: str = "HS256"
    access_token_minutes: int = 60
    # Long-lived streams (the /live feed, cot-serve) look again at their caller this often (seconds):
    # an expired or revoked token, a disabled or deleted user, a changed role or agency ends them.
    stream_recheck_s: float = Field(default=5.0, gt=0, le=60)
    # At most this many open streams per user and process: live feeds (GET /api/v1/live; 429 beyond)
    # and cot-serve connections (closed at once beyond, the reason logged).
    live_max_streams_per_user: int = Field(default=4, ge=1)
    cot_max_streams_per_user: int = Field(default=4, ge=1)

    # Sign-in throttling (docs/security.md). Failures of one account, or from one client address,
    # within the window: the first few are free, then each one blocks that account or address for
    # twice as long as the last (from login_backoff_s up to login_backoff_max_s).
    login_window_s: int = Field(default=900, ge=1)
    login_account_free_failures: int = Field(default=5, ge=1)
    login_address_free_failures: int = Field(default=20, ge=1)
    login_backoff_s: float = Field(default=1.0, gt=0)
    login_backoff_max_s: float = Field(default=900.0, gt=0)
    # At most this many password checks (argon2id, 64 MiB each) at once in one API process; an
    # attempt waits this long for its turn and is then refused (503) without hashing.
    login_hash_concurrency: int = Field(default=4, ge=1, le=64)
    login_hash_wait_s: float = Field(default=2.0, ge=0)
    # At most this many sign-ins in one API process at once (checking the throttle, waiting for a
    # turn or hashing); one more is refused (503) at the door, before it takes a thread or a
    # database connection, so a flood cannot starve the other requests.
    login_queue_max: int = Field(default=16, ge=1, le=1024)

    # Topic root of the MQTT contract (docs/mqtt.md).
    mqtt_topic_root: str = "borderwatch/v1"
    # Report cells counting fewer persons than this are suppressed (people/service.py).
    report_min_cell: int = 5
    # Empty: one worker on the plain subscription ROOT/gw/#, which Mosquitto 2.0 restores intact
    # after a restart. Several workers set the same group (e.g. "bw-ingest") to split the stream.
    ingest_share_group: str = ""
    ingest_client_id: str = "bw-ingest-1"
    # Micro-batches: a batch grows while the previous one is in the database, until one of these
    # caps; with nothing in the database it leaves at once.
    ingest_batch_size: int = 1000
    ingest_batch_ms: int = 20
    # How many unacknowledged QoS 1 messages the broker may send us at once.
    ingest_receive_maximum: int = 10000
    # Batches stored ahead, each on a connection of its own, while the oldest one commits.
    ingest_stage_ahead: int = Field(default=2, ge=1, le=8)
    max_payload_bytes: int = 64 * 1024
    # How far each kind of sensor sees from its registered location, unless the sensor has a range of
    # its own (``sensors.range_m``): a detection placed further away is a dead letter (outside_coverage).
    sensor_range_camera_m: float = Field(default=5_000.0, gt=0)
    sensor_range_ground_sensor_m: float = Field(default=1_000.0, gt=0)
    sensor_range_radar_m: float = Field(default=50_000.0, gt=0)
    sensor_range_anpr_m: float = Field(default=1_000.0, gt=0)
    sensor_range_ais_receiver_m: float = Field(default=75_000.0, gt=0)
    sensor_range_other_m: float = Field(default=100_000.0, gt=0)
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
    # Dead letters older than this are deleted by `borderwatch retention` and the worker's timer.
    dead_letter_retention_days: int = Field(default=30, ge=1)
    # Per gateway and day, this many dead letters are kept whole; past it one in dead_letter_sample_every
    # (every one is still counted in dead_letter_counts).
    dead_letter_gateway_quota: int = Field(default=1000, ge=0)
    dead_letter_sample_every: int = Field(default=100, ge=1)
    # The ingest worker applies the retention policy this often (seconds; 0: only `borderwatch retention`).
    retention_interval_s: float = 0

    # A tile server on the operators' own network (``https://tiles.example/{z}/{x}/{y}.png``);
    # empty: the maps draw their base layer from the shipped Natural Earth countries only.
    map_tile_url: str = ""
    map_tile_attribution: str = ""

    # Maritime and track analytics (sensors/ais.py, alerts/maritime.py, alerts/health.py).
    # Incomplete multi-part AIS messages are dropped after this many seconds.
    ais_fragment_ttl_s: int = 120
    # A vessel seen by radar/camera with no AIS position within this distance and time is dark.
    dark_vessel_radius_m: float = 1500.0
    dark_vessel_window_s: int = 600
    dark_vessel_repeat_s: int = 21600
    # An AIS vessel silent longer than this near a maritime boundary or in a territorial sea.
    ais_gap_s: int = 1800
    ais_gap_boundary_m: float = 25000.0
    # Two vessels this close for this long, outside port zones, once per encounter.
    rendezvous_m: float = 250.0
    rendezvous_s: int = 1800
    rendezvous_break_s: int = 900
    # A vessel slower than this for longer than loiter_s in a zone.
    loiter_speed_kn: float = 2.0
    loiter_s: int = 1800
    # A watch-list entry alerts once per track within this many seconds.
    watchlist_repeat_s: int = 3600
    # A sensor not heard of (detections, gateway heartbeats) for this long is offline.
    sensor_timeout_s: int = 300
    # How often the worker runs the time-based rules (AIS gaps, sensor offline).
    analytics_sweep_s: float = 10.0
    # A tracked position closer than this to a border line or a zone's edge does not count yet
    # (at most 1,000 m: the geofencing grid keeps fence edges within about 1 km of each cell).
    crossing_hysteresis_m: float = Field(default=40.0, ge=0, le=1000)
    # A tracked object must be inside a zone this long before its entry alerts (0: at once).
    zone_dwell_s: int = 0

    # A request body larger than this is refused (413) before it is read (api/limits.py); evidence
    # uploads have evidence_max_bytes instead.
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024)
    # Evidence bytes uploaded to the API are kept here, named by their SHA-256 (patrols/evidence/content.py).
    evidence_dir: str = Field(default_factory=lambda: str(run_dir() / "evidence"))
    # An upload larger than this is refused (413) before it is stored.
    evidence_max_bytes: int = 64 * 1024 * 1024

    # Webhook receivers on these networks (comma-separated CIDRs, e.g. "10.20.0.0/16") may be
    # subscribed although their addresses are not public ones: loopback, private, link-local,
    # carrier-grade NAT, unique-local and reserved addresses are refused otherwise, so a webhook
    # cannot make the deliverer probe the machine or the network it runs on.
    webhook_allowed_networks: str = ""

    api_host: str = "127.0.0.1"
    api_port: int = 8000
    # Proxies whose X-Forwarded-Proto/-For `borderwatch api` believes (uvicorn's forwarded_allow_ips:
    # comma-separated addresses or networks, "*" for any); empty: uvicorn's FORWARDED_ALLOW_IPS or 127.0.0.1.
    forwarded_allow_ips: str = ""
    # Always mark the session cookies Secure (behind a TLS proxy whatever the proxy headers say).
    cookie_secure: bool = False

    demo_gateways_file: str = Field(default_factory=lambda: str(run_dir() / "demo-gateways.json"))

    @field_validator("webhook_allowed_networks")
    @classmethod
    def _networks(cls, value: str) -> str:
        for part in filter(None, (p.strip() for p in value.split(","))):
            try:
                ipaddress.ip_network(part, strict=False)
            except ValueError as exc:
                raise ValueError(f"BW_WEBHOOK_ALLOWED_NETWORKS: {part!r} is not a network ({exc})") from None
        return value

    def webhook_networks(self) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
        return tuple(
            ipaddress.ip_network(p.strip(), strict=False) for p in self.webhook_allowed_networks.split(",") if p.strip()
        )

    def ingest_url(self) -> str:
        """The ingest worker's database URL (the API's when no role of its own is configured)."""
        return self.ingest_database_url or self.database_url

    def owner_url(self) -> str:
        """The URL of the role that owns the tables, for migrations (the API's when not set)."""
        return self.owner_database_url or self.database_url

    def single_role(self) -> bool:
        """True when migrations and the API use one role: the audit trail is then not protected."""
        return self.owner_url() == self.database_url

    def sensor_range_m(self, kind: str) -> float:
        """The default range of a kind of sensor (``BW_SENSOR_RANGE_<KIND>_M``)."""
        return getattr(self, f"sensor_range_{kind}_m", self.sensor_range_other_m)

    def mqtt_parts(self, url: str | None = None) -> tuple[str, int, str | None, str | None]:
        """Host, port, username and password of an ``mqtt://user:pw@host:port`` URL."""
        parts = urlsplit(url or self.mqtt_url)
        if parts.scheme not in ("mqtt", "tcp"):
            raise ValueError(f"MQTT URL must start with mqtt://, got {parts.scheme!r}")
        return parts.hostname or "127.0.0.1", parts.port or 1883, parts.username, parts.password


@lru_cache
def get_settings() -> Settings:
    return Settings()
