"""Response classes: compact JSON (orjson) and GeoJSON passed through as the database wrote it."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi.responses import JSONResponse, Response


class CompactJSONResponse(JSONResponse):
    """JSON without whitespace, serialised by orjson (datetimes as RFC 3339)."""

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, option=orjson.OPT_NON_STR_KEYS | orjson.OPT_UTC_Z)


class GeoJSONResponse(Response):
    """An RFC 7946 document; the body is already serialised (by PostGIS), so it is sent as is."""

    media_type = "application/geo+json"
