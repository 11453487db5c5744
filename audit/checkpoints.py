"""Signed checkpoints of the audit chain: the head (sequence number and hash) signed with an
Ed25519 key that is kept outside the database, so that a chain rewritten by whoever can write
the table (the owner role, a superuser) no longer matches a checkpoint signed before.

A checkpoint signs the canonical JSON (sorted keys, compact, UTF-8; as the chain's entries) of
``{"seq", "hash", "at", "node", "key_id"}``: ``at`` as the trail writes times, ``key_id`` the first
16 hex digits of the SHA-256 of the raw 32-byte public key. Checkpoints are stored in
``audit_checkpoints`` (append-only) and exported as JSON lines (:func:`export_lines`), each with the
signature (base64) and the public key (base64, raw), for partners or offline media.
:func:`check` tells which checkpoints the chain no longer matches: an entry rewritten, or cut
from the end, after a checkpoint covered it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import stat
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy import insert, text
from sqlalchemy.orm import Session

from audit.models import AuditCheckpoint
from audit.service import canonical_json, timestamp_text
from core.errors import Conflict, InvalidInput, NotFound


class SigningKeyMissing(NotFound):
    code = "audit_key_missing"


class SigningKeyExposed(Conflict):
    code = "audit_key_exposed"


class SigningKeyExists(Conflict):
    code = "audit_key_exists"


class ChainEmpty(Conflict):
    code = "audit_chain_empty"


class BadCheckpointFile(InvalidInput):
    code = "bad_checkpoint_file"


@dataclass(frozen=True)
class Checkpoint:
    seq: int
    hash: str
    at: str  # as timestamp_text writes it
    node: str
    key_id: str
    signature: str  # base64


@dataclass(frozen=True)
class Finding:
    kind: str  # rewritten, truncated, forged, unknown_key
    seq: int
    message: str


# -- keys ------------------------------------------------------------------------------------
def public_raw(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_id(key: Ed25519PublicKey) -> str:
    return hashlib.sha256(public_raw(key)).hexdigest()[:16]


def public_path(key_file: Path) -> Path:
    return key_file.with_name(key_file.name + ".pub")


def generate_key(key_file: Path, *, force: bool = False) -> str:
    """Write a new private key (PKCS#8 PEM, mode 0600, directory 0700) and its public half
    (``<file>.pub``, 0644); returns the key id. An existing key is kept unless ``force``."""
    if key_file.exists() and not force:
        raise SigningKeyExists(f"{key_file} exists: a new key would not verify the checkpoints signed so far")
    key_file.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    private = Ed25519PrivateKey.generate()
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    tmp = key_file.with_name(f".{key_file.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    os.replace(tmp, key_file)
    public = private.public_key()
    public_path(key_file).write_bytes(
        public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    public_path(key_file).chmod(0o644)
    return key_id(public)


def load_private_key(key_file: Path) -> Ed25519PrivateKey:
    """The signing key; refused if others than its owner may read it."""
    try:
        mode = key_file.stat().st_mode
    except FileNotFoundError:
        raise SigningKeyMissing(f"no audit signing key at {key_file}: run `borderwatch audit keygen`") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise SigningKeyExposed(f"{key_file} is readable by others (mode {stat.S_IMODE(mode):o}): chmod 600 it")
    key = serialization.load_pem_private_key(key_file.read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise InvalidInput(f"{key_file} does not hold an Ed25519 private key", field="key_file")
    return key


def load_public_key(path: Path) -> Ed25519PublicKey:
    """A public key from a PEM public key file, or the public half of a private key file."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise SigningKeyMissing(f"no key at {path}") from None
    key = (
        serialization.load_pem_private_key(data, password=None).public_key()
        if b"PRIVATE KEY" in data
        else serialization.load_pem_public_key(data)
    )
    if not isinstance(key, Ed25519PublicKey):
        raise InvalidInput(f"{path} does not hold an Ed25519 key", field="public_key")
    return key


# -- signing ---------------------------------------------------------------------------------
def payload(seq: int, hash_: str, at: str, node: str, kid: str) -> bytes:
    """The bytes a checkpoint's signature is taken over."""
    return canonical_json({"seq": seq, "hash": hash_, "at": at, "node": node, "key_id": kid})


def sign(key: Ed25519PrivateKey, *, seq: int, hash_: str, at: datetime, node: str) -> Checkpoint:
    kid = key_id(key.public_key())
    when = timestamp_text(at)
    signature = key.sign(payload(seq, hash_, when, node, kid))
    return Checkpoint(seq, hash_, when, node, kid, base64.b64encode(signature).decode("ascii"))


def signature_valid(checkpoint: Checkpoint, key: Ed25519PublicKey) -> bool:
    try:
        raw = base64.b64decode(checkpoint.signature, validate=True)
        key.verify(raw, payload(checkpoint.seq, checkpoint.hash, checkpoint.at, checkpoint.node, checkpoint.key_id))
    except (InvalidSignature, binascii.Error, ValueError):
        return False
    return True


def write_checkpoint(*, session: Session, key: Ed25519PrivateKey, node: str) -> Checkpoint:
    """Sign the head of the chain as committed now and store the checkpoint (caller commits)."""
    head = session.execute(
        text("SELECT seq, hash, clock_timestamp() AS now FROM audit_log ORDER BY seq DESC LIMIT 1")
    ).one_or_none()
    if head is None:
        raise ChainEmpty("the audit trail is empty: nothing to sign yet")
    checkpoint = sign(key, seq=head.seq, hash_=head.hash, at=head.now, node=node)
    session.execute(
        insert(AuditCheckpoint),
        [{**asdict(checkpoint), "at": head.now}],
    )
    return checkpoint


def stored(*, session: Session, since_seq: int = 0) -> list[Checkpoint]:
    rows = session.execute(
        text("SELECT seq, hash, at, node, key_id, signature FROM audit_checkpoints WHERE seq > :s ORDER BY seq, id"),
        {"s": since_seq},
    ).all()
    return [Checkpoint(r.seq, r.hash, timestamp_text(r.at), r.node, r.key_id, r.signature) for r in rows]


# -- export ----------------------------------------------------------------------------------
def export_lines(checkpoints: Iterable[Checkpoint], public: Ed25519PublicKey) -> list[str]:
    """One JSON object per checkpoint, with the public key (base64, raw) it verifies under."""
    key_text = base64.b64encode(public_raw(public)).decode("ascii")
    return [json.dumps({**asdict(c), "public_key": key_text}, sort_keys=True) for c in checkpoints]


def read_export(path: Path) -> list[Checkpoint]:
    """The checkpoints of a file :func:`export_lines` wrote."""
    found: list[Checkpoint] = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise BadCheckpointFile(f"cannot read {path}: {exc}", field="checkpoints") from None
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
            checkpoint = Checkpoint(
                int(obj["seq"]), str(obj["hash"]), str(obj["at"]), str(obj["node"]), str(obj["key_id"]),
                str(obj["signature"]),
            )  # fmt: skip
        except (ValueError, KeyError, TypeError):
            raise BadCheckpointFile(f"{path}, line {number}: not a checkpoint", field="checkpoints") from None
        found.append(checkpoint)
    return found


# -- checking --------------------------------------------------------------------------------
def check(*, session: Session, checkpoints: Sequence[Checkpoint], trusted: Sequence[Ed25519PublicKey]) -> list[Finding]:
    """What the chain in the database no longer agrees with: each checkpoint must be signed by a
    trusted key and its entry must still be there with the signed hash."""
    keys = {key_id(k): k for k in trusted}
    findings: list[Finding] = []
    valid: list[Checkpoint] = []
    for c in checkpoints:
        key = keys.get(c.key_id)
        if key is None:
            findings.append(Finding("unknown_key", c.seq, f"checkpoint at {c.seq} is signed by unknown key {c.key_id}"))
        elif not signature_valid(c, key):
            findings.append(Finding("forged", c.seq, f"checkpoint at {c.seq}: its signature does not verify"))
        else:
            valid.append(c)
    held = dict(
        session.execute(
            text("SELECT seq, hash FROM audit_log WHERE seq = ANY(:s)"), {"s": sorted({c.seq for c in valid})}
        ).all()
    )
    for c in valid:
        if c.seq not in held:
            findings.append(
                Finding(
                    "truncated",
                    c.seq,
                    f"entry {c.seq}, signed at {c.at} by {c.node}, is missing: entries were removed",
                )
            )
        elif held[c.seq] != c.hash:
            findings.append(
                Finding(
                    "rewritten",
                    c.seq,
                    f"entry {c.seq} does not have the hash signed at {c.at} by {c.node} ({c.hash[:12]}…): "
                    f"the chain was rewritten up to it",
                )
            )
    return findings
