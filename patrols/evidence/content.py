"""Evidence bytes on disk: an upload spooled while it is hashed and its size capped, kept under a
name that is its SHA-256, and hashed again when checked."""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

from core.errors import BorderwatchError

CHUNK = 1024 * 1024


class ContentTooLarge(BorderwatchError):
    status_code = 413
    code = "content_too_large"


class ContentSpool:
    """Bytes arriving in chunks: hashed as they come, written to a file under the evidence directory,
    refused once they pass the size cap."""

    def __init__(self, directory: str | Path, max_bytes: int) -> None:
        incoming = Path(directory) / "incoming"
        incoming.mkdir(parents=True, exist_ok=True)
        self.max_bytes = max_bytes
        self.size = 0
        self._sha = hashlib.sha256()
        fd, name = tempfile.mkstemp(dir=incoming, prefix="upload-")
        self.path = Path(name)
        self._file = os.fdopen(fd, "wb")

    def write(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.size > self.max_bytes:
            self.discard()
            raise ContentTooLarge(f"the upload is larger than {self.max_bytes} bytes", max_bytes=self.max_bytes)
        self._sha.update(chunk)
        self._file.write(chunk)

    def finish(self) -> str:
        self._file.close()
        return self._sha.hexdigest()

    def discard(self) -> None:
        if not self._file.closed:
            self._file.close()
        self.path.unlink(missing_ok=True)


def content_path(directory: str | Path, sha256: str) -> Path:
    """Where stored bytes live: named by their SHA-256 (the same bytes are kept once)."""
    return Path(directory) / sha256[:2] / sha256


def sha256_of(path: Path) -> tuple[str, int]:
    """The SHA-256 (hex) and size of a stored file, read in chunks."""
    sha, size = hashlib.sha256(), 0
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            sha.update(chunk)
            size += len(chunk)
    return sha.hexdigest(), size
