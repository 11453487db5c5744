"""The demo registry: gateways and sensors where the simulator publishes from."""

from __future__ import annotations

# Places are real: border posts on the Thai-Malaysian border and the Malacca Strait coast.
DEMO_GATEWAYS = [
    {
        "id": "th-rtp-sadao",
        "agency": "TH-RTP",
        "name": "Sadao border post",
        "sensors": [
            {"id": "th-sadao-cam-1", "kind": "camera", "lon": 100.4246, "lat": 6.6281, "range_m": 3000},
            {"id": "th-sadao-ugs-1", "kind": "ground_sensor", "lon": 100.3990, "lat": 6.6105, "range_m": 500},
            {"id": "th-padang-besar-cam-1", "kind": "camera", "lon": 100.3219, "lat": 6.6620, "range_m": 3000},
        ],
    },
    {
        "id": "th-rtp-sungai-kolok",
        "agency": "TH-RTP",
        "name": "Sungai Kolok border post",
        "sensors": [
            {"id": "th-kolok-cam-1", "kind": "camera", "lon": 101.9668, "lat": 6.0296, "range_m": 3000},
            {"id": "th-kolok-anpr-1", "kind": "anpr", "lon": 101.9700, "lat": 6.0270, "range_m": 100},
        ],
    },
    {
        "id": "my-pdrm-bukit-kayu-hitam",
        "agency": "MY-PDRM",
        "name": "Bukit Kayu Hitam post",
        "sensors": [
            {"id": "my-bkh-cam-1", "kind": "camera", "lon": 100.4203, "lat": 6.5080, "range_m": 3000},
        ],
    },
    {
        "id": "my-mmea-malacca",
        "agency": "MY-MMEA",
        "name": "Malacca Strait coastal station",
        "sensors": [
            {"id": "my-malacca-radar-1", "kind": "radar", "lon": 101.8000, "lat": 2.4000, "range_m": 60000},
            {"id": "my-malacca-ais-1", "kind": "ais_receiver", "lon": 102.2500, "lat": 2.1900, "range_m": 70000},
            {"id": "my-johor-radar-1", "kind": "radar", "lon": 103.9000, "lat": 1.3700, "range_m": 40000},
        ],
    },
]

DEMO_USERS = [
    {"username": "th-operator", "agency": "TH-RTP", "role": "operator"},
    {"username": "my-operator", "agency": "MY-PDRM", "role": "operator"},
    {"username": "mmea-operator", "agency": "MY-MMEA", "role": "operator"},
]
