"""An independent Python client for the egov envelope, written from the public
contract only: the protos in proto/egov/v1/ and docs/envelope.md.

What it provides:

* ``load_stubs()``: the Python message classes and gRPC stubs, generated at run
  time with ``grpc_tools.protoc`` into a temporary directory;
* ``signed_bytes()`` / ``countersigned_bytes()``: the exact bytes each
  signature covers (docs/envelope.md, "The signed bytes");
* ``TrustRegistry``: ``keys/trust.toml`` (members, roles, public keys, validity);
* ``Signer``: a member's ed25519 key from ``keys/secrets/MEMBER.seed``;
* ``seal()``: an ``egov.v1.Envelope`` signed by a sender;
* ``verify_envelope()``: the checks a receiver makes on a signed (and
  countersigned) answer;
* ``self_test()``: reproduces docs/envelope-vectors.json exactly.

Requires grpcio, grpcio-tools and cryptography (tests/python/requirements.txt).
"""

from __future__ import annotations

import atexit
import datetime as _dt
import glob
import importlib
import json
import shutil
import struct
import sys
import tempfile
import time
import tomllib
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

REPO_ROOT = Path(__file__).resolve().parent.parent.parent
PROTO_ROOT = REPO_ROOT / "proto"
VECTORS_FILE = REPO_ROOT / "docs" / "envelope-vectors.json"

# docs/envelope.md, "The signed bytes": the tags, each followed by one zero byte.
ENVELOPE_TAG = b"egov.v1.envelope\x00"
COUNTERSIGNATURE_TAG = b"egov.v1.countersignature\x00"
GATEWAY_ID = "egov-gateway"
SIGNATURE_LEN = 64
DEFAULT_FRESHNESS_MS = 5 * 60 * 1000


class EnvelopeError(Exception):
    """A refusal with one of the reason codes of docs/envelope.md."""

    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason


# --------------------------------------------------------------------------
# Stubs
# --------------------------------------------------------------------------

_STUBS: SimpleNamespace | None = None


def load_stubs(proto_root: Path | str = PROTO_ROOT) -> SimpleNamespace:
    """Generates the Python modules for proto/egov/v1/*.proto into a temporary
    directory (removed at exit) and imports them. Cached per process."""
    global _STUBS
    if _STUBS is not None:
        return _STUBS
    from grpc_tools import protoc  # imported here: only needed for generation

    proto_root = Path(proto_root)
    files = sorted(glob.glob(str(proto_root / "egov" / "v1" / "*.proto")))
    if not files:
        raise RuntimeError(f"no .proto files under {proto_root}/egov/v1")
    out = tempfile.mkdtemp(prefix="egov-py-stubs-")
    atexit.register(shutil.rmtree, out, True)
    well_known = Path(protoc.__file__).parent / "_proto"
    args = ["grpc_tools.protoc", f"-I{proto_root}", f"-I{well_known}", f"--python_out={out}", f"--grpc_python_out={out}"]
    rc = protoc.main(args + files)
    if rc != 0:
        raise RuntimeError(f"grpc_tools.protoc failed ({rc}) on {files}")
    sys.path.insert(0, out)
    importlib.invalidate_caches()
    modules = {}
    for path in files:
        name = Path(path).stem
        modules[f"{name}_pb2"] = importlib.import_module(f"egov.v1.{name}_pb2")
        modules[f"{name}_pb2_grpc"] = importlib.import_module(f"egov.v1.{name}_pb2_grpc")
    _STUBS = SimpleNamespace(**modules)
    return _STUBS


# --------------------------------------------------------------------------
# The signed bytes
# --------------------------------------------------------------------------


def u64be(n: int) -> bytes:
    return struct.pack(">Q", n)


def signed_bytes(header: bytes, body: bytes) -> bytes:
    """The sender's signed bytes:
    "egov.v1.envelope" 0x00 || u64be(len(header)) || header || u64be(len(body)) || body"""
    return ENVELOPE_TAG + u64be(len(header)) + header + u64be(len(body)) + body


def countersigned_bytes(header: bytes, body: bytes, sender_key_id: str, sender_signature: bytes) -> bytes:
    """The gateway's countersigned bytes: the countersignature tag, the header
    and body as above, then the sender signature's key id (UTF-8) and the
    sender's 64-byte signature, each preceded by its u64be length."""
    key_id = sender_key_id.encode("utf-8")
    return (
        COUNTERSIGNATURE_TAG
        + u64be(len(header))
        + header
        + u64be(len(body))
        + body
        + u64be(len(key_id))
        + key_id
        + u64be(len(sender_signature))
        + sender_signature
    )


# --------------------------------------------------------------------------
# Strict ed25519 verification
# --------------------------------------------------------------------------

_P = 2**255 - 19
_L = 2**252 + 27742317777372353535851937790883648493
# The y coordinate of an order-8 point of edwards25519 (the other is p - y).
_Y8 = int.from_bytes(bytes.fromhex("26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05"), "little")


def _is_small_order(encoding: bytes) -> bool:
    """Whether a 32-byte point encoding is a point of order 1, 2, 4 or 8
    (including non-canonical encodings of those points)."""
    y = (int.from_bytes(encoding, "little") & ((1 << 255) - 1)) % _P
    return y in (0, 1, _P - 1, _Y8, _P - _Y8)


def verify_strict(public: bytes, message: bytes, signature: bytes) -> bool:
    """ed25519 (RFC 8032) verification with the strict rules docs/envelope.md
    names: no small-order public key or R, canonical S (S < L)."""
    if len(public) != 32 or len(signature) != SIGNATURE_LEN:
        return False
    if _is_small_order(public) or _is_small_order(signature[:32]):
        return False
    if int.from_bytes(signature[32:], "little") >= _L:
        return False
    try:
        Ed25519PublicKey.from_public_bytes(public).verify(signature, message)
    except (InvalidSignature, ValueError):
        return False
    return True


# --------------------------------------------------------------------------
# The trust registry
# --------------------------------------------------------------------------


def _instant_ms(value) -> int | None:
    """An RFC 3339 instant (a TOML string or a TOML date-time) in ms since the epoch."""
    if value is None:
        return None
    if isinstance(value, str):
        text = value.strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        value = _dt.datetime.fromisoformat(text)
    if isinstance(value, _dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=_dt.timezone.utc)
        return int(round(value.timestamp() * 1000))
    raise ValueError(f"not an instant: {value!r}")


@dataclass
class TrustKey:
    key_id: str
    member_id: str
    public: bytes
    valid_from_ms: int | None
    valid_until_ms: int | None
    revoked_at_ms: int | None = None


@dataclass
class Member:
    member_id: str
    role: str
    name: str
    keys: list[TrustKey] = field(default_factory=list)


class TrustRegistry:
    def __init__(self, members: list[Member]):
        self.members = {m.member_id: m for m in members}
        self.keys = {k.key_id: k for m in members for k in m.keys}

    @classmethod
    def load(cls, path: Path | str) -> "TrustRegistry":
        with open(path, "rb") as f:
            data = tomllib.load(f)
        members = []
        for m in data.get("member", []):
            member = Member(m["id"], m.get("role", ""), m.get("name", ""))
            for k in m.get("key", []):
                public = bytes.fromhex(k["public"])
                if len(public) != 32:
                    raise ValueError(f"key {k['id']}: public key is not 32 bytes")
                member.keys.append(
                    TrustKey(
                        key_id=k["id"],
                        member_id=member.member_id,
                        public=public,
                        valid_from_ms=_instant_ms(k.get("valid_from")),
                        valid_until_ms=_instant_ms(k.get("valid_until")),
                        revoked_at_ms=_instant_ms(k.get("revoked_at")),
                    )
                )
            members.append(member)
        return cls(members)

    def check_key(self, sender_id: str, key_id: str, at_ms: int) -> TrustKey:
        """Checks 4 and 5 of docs/envelope.md."""
        if sender_id not in self.members:
            raise EnvelopeError("envelope.unknown_sender", f"{sender_id} is not a member")
        key = self.keys.get(key_id)
        if key is None:
            raise EnvelopeError("envelope.unknown_key", f"key {key_id} is not in the trust registry")
        if key.member_id != sender_id:
            raise EnvelopeError("envelope.key_not_of_sender", f"key {key_id} is {key.member_id}'s, not {sender_id}'s")
        if key.revoked_at_ms is not None and key.revoked_at_ms <= at_ms:
            raise EnvelopeError("envelope.key_revoked", f"key {key_id} was revoked at {key.revoked_at_ms}")
        if (key.valid_from_ms is not None and at_ms < key.valid_from_ms) or (
            key.valid_until_ms is not None and at_ms > key.valid_until_ms
        ):
            raise EnvelopeError("envelope.key_not_valid", f"key {key_id} is not valid at {at_ms}")
        return key


# --------------------------------------------------------------------------
# Signing
# --------------------------------------------------------------------------


def public_of_seed(seed: bytes) -> bytes:
    return (
        Ed25519PrivateKey.from_private_bytes(seed)
        .public_key()
        .public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    )


class Signer:
    """One member's signing key."""

    def __init__(self, member_id: str, key_id: str, seed: bytes):
        if len(seed) != 32:
            raise ValueError("an ed25519 seed is 32 bytes")
        self.member_id = member_id
        self.key_id = key_id
        self._key = Ed25519PrivateKey.from_private_bytes(seed)
        self.public = public_of_seed(seed)

    def sign(self, message: bytes) -> bytes:
        return self._key.sign(message)

    @classmethod
    def from_key_dir(cls, keys_dir: Path | str, member_id: str, trust: TrustRegistry) -> "Signer":
        """Reads keys/secrets/MEMBER.seed (hex) and finds the key id whose public
        key in the trust registry matches the seed (the seed file does not name it)."""
        seed = bytes.fromhex(Path(keys_dir, "secrets", f"{member_id}.seed").read_text().strip())
        public = public_of_seed(seed)
        member = trust.members.get(member_id)
        if member is None:
            raise ValueError(f"{member_id} is not in the trust registry")
        for key in member.keys:
            if key.public == public:
                return cls(member_id, key.key_id, seed)
        raise ValueError(f"no key of {member_id} in the trust registry matches its seed")


def now_ms() -> int:
    return int(time.time() * 1000)


def new_message_id() -> str:
    return str(uuid.uuid4())


def build_header(
    *,
    service_id: str,
    sender_id: str,
    recipient_id: str,
    correlation_id: str,
    body_type: str,
    message_type: str = "MESSAGE_TYPE_REQUEST",
    message_id: str | None = None,
    message_time_ms: int | None = None,
) -> bytes:
    """A serialised EnvelopeHeader with every required field set."""
    pb = load_stubs().envelope_pb2
    header = pb.EnvelopeHeader(
        message_id=message_id or new_message_id(),
        correlation_id=correlation_id,
        service_id=service_id,
        sender_id=sender_id,
        recipient_id=recipient_id,
        message_time_ms=message_time_ms if message_time_ms is not None else now_ms(),
        message_type=pb.MessageType.Value(message_type),
        body_type=body_type,
    )
    return header.SerializeToString()


def seal(signer: Signer, header: bytes, body: bytes):
    """An Envelope carrying these exact header and body bytes, signed by the sender."""
    pb = load_stubs().envelope_pb2
    signature = signer.sign(signed_bytes(header, body))
    return pb.Envelope(header=header, body=body, signatures=[pb.Signature(key_id=signer.key_id, ed25519=signature)])


def countersign(gateway: Signer, envelope):
    """Adds the gateway's countersignature (what the gateway does; used by the self-test)."""
    pb = load_stubs().envelope_pb2
    first = envelope.signatures[0]
    counter = gateway.sign(countersigned_bytes(envelope.header, envelope.body, first.key_id, first.ed25519))
    out = pb.Envelope()
    out.CopyFrom(envelope)
    out.signatures.append(pb.Signature(key_id=gateway.key_id, ed25519=counter))
    return out


def body_message(full_name: str):
    """The generated class of a body type such as "egov.v1.PersonAnswer"."""
    stubs = load_stubs()
    package, _, name = full_name.rpartition(".")
    if package != "egov.v1":
        raise EnvelopeError("envelope.body_type_mismatch", f"unknown body type {full_name}")
    for attr in vars(stubs):
        if attr.endswith("_pb2") and hasattr(getattr(stubs, attr), name):
            return getattr(getattr(stubs, attr), name)
    raise EnvelopeError("envelope.body_type_mismatch", f"unknown body type {full_name}")


# --------------------------------------------------------------------------
# Verification
# --------------------------------------------------------------------------

_REQUIRED = ("message_id", "correlation_id", "service_id", "sender_id", "recipient_id", "message_time_ms", "message_type", "body_type")


@dataclass
class Verified:
    header: object  # egov.v1.EnvelopeHeader
    body: object  # the decoded body
    sender_key: TrustKey
    countersigner_key: TrustKey | None


def verify_envelope(
    envelope,
    trust: TrustRegistry,
    *,
    expect_sender: str | None = None,
    expect_body_type: str | None = None,
    countersigned: bool = True,
    gateway_id: str = GATEWAY_ID,
    freshness_ms: int | None = DEFAULT_FRESHNESS_MS,
    at_ms: int | None = None,
) -> Verified:
    """The checks of docs/envelope.md, "What a receiver checks", that make sense
    for a client checking an answer: the header, the sender's signature with the
    sender's key, the freshness, then the gateway's countersignature with the
    gateway's key, then the body's type. Raises EnvelopeError with the reason code."""
    pb = load_stubs().envelope_pb2
    header = pb.EnvelopeHeader()
    try:
        header.ParseFromString(envelope.header)
    except Exception as e:  # noqa: BLE001 - protobuf's DecodeError
        raise EnvelopeError("envelope.malformed_header", str(e)) from e
    for name in _REQUIRED:
        value = getattr(header, name)
        if not value or (name == "message_time_ms" and value <= 0):
            raise EnvelopeError("envelope.missing_field", f"header field {name} is not set")
    if not envelope.signatures:
        raise EnvelopeError("envelope.missing_signature", "no signature")
    first = envelope.signatures[0]
    if len(first.ed25519) != SIGNATURE_LEN:
        raise EnvelopeError("envelope.bad_signature", f"signature is {len(first.ed25519)} bytes, not 64")
    if expect_sender is not None and header.sender_id != expect_sender:
        raise EnvelopeError("envelope.unexpected_sender", f"sent by {header.sender_id}, expected {expect_sender}")
    key = trust.check_key(header.sender_id, first.key_id, header.message_time_ms)
    if not verify_strict(key.public, signed_bytes(envelope.header, envelope.body), first.ed25519):
        raise EnvelopeError("envelope.bad_signature", f"{header.sender_id}'s signature does not verify")
    if freshness_ms is not None:
        clock = at_ms if at_ms is not None else now_ms()
        if header.message_time_ms < clock - freshness_ms:
            raise EnvelopeError("envelope.stale", f"message time {header.message_time_ms} is older than the window")
        if header.message_time_ms > clock + freshness_ms:
            raise EnvelopeError("envelope.future", f"message time {header.message_time_ms} is in the future")
    counter_key = None
    if countersigned:
        if len(envelope.signatures) < 2:
            raise EnvelopeError("envelope.missing_countersignature", "no countersignature")
        second = envelope.signatures[1]
        if len(second.ed25519) != SIGNATURE_LEN:
            raise EnvelopeError("envelope.bad_countersignature", "countersignature is not 64 bytes")
        try:
            counter_key = trust.check_key(gateway_id, second.key_id, header.message_time_ms)
        except EnvelopeError as e:
            raise EnvelopeError("envelope.bad_countersignature", str(e)) from e
        message = countersigned_bytes(envelope.header, envelope.body, first.key_id, first.ed25519)
        if not verify_strict(counter_key.public, message, second.ed25519):
            raise EnvelopeError("envelope.bad_countersignature", "the gateway's countersignature does not verify")
    if expect_body_type is not None and header.body_type != expect_body_type:
        raise EnvelopeError("envelope.body_type_mismatch", f"body is {header.body_type}, expected {expect_body_type}")
    cls = body_message(header.body_type)
    body = cls()
    try:
        body.ParseFromString(envelope.body)
    except Exception as e:  # noqa: BLE001
        raise EnvelopeError("envelope.malformed_body", str(e)) from e
    return Verified(header=header, body=body, sender_key=key, countersigner_key=counter_key)


# --------------------------------------------------------------------------
# gRPC refusals
# --------------------------------------------------------------------------


def refusal_reason(error) -> str:
    """The reason code of a refusal: the `egov-reason` metadata (trailing or
    initial), else the status message's prefix before ": "."""
    for getter in ("trailing_metadata", "initial_metadata"):
        try:
            metadata = getattr(error, getter)() or ()
        except Exception:  # noqa: BLE001
            metadata = ()
        for key, value in metadata:
            if key == "egov-reason":
                return value.decode() if isinstance(value, bytes) else value
    details = error.details() or ""
    return details.split(": ", 1)[0]


# --------------------------------------------------------------------------
# The test vectors
# --------------------------------------------------------------------------


def self_test(vectors_path: Path | str = VECTORS_FILE) -> list[str]:
    """Reproduces docs/envelope-vectors.json and the fields docs/envelope.md
    lists for it. Returns the list of what was checked; raises AssertionError."""
    stubs = load_stubs()
    v = json.loads(Path(vectors_path).read_text())
    hx = bytes.fromhex
    done = []

    def same(what, got: bytes, want_hex: str):
        if got != hx(want_hex):
            raise AssertionError(f"vector {what}: got {got.hex()}, expected {want_hex}")
        done.append(what)

    sender_seed, gateway_seed = hx(v["sender_seed"]), hx(v["gateway_seed"])
    same("sender public key", public_of_seed(sender_seed), v["sender_public_key"])
    same("gateway public key", public_of_seed(gateway_seed), v["gateway_public_key"])

    # The header and body from the fields docs/envelope.md lists.
    header = build_header(
        message_id="00000000-0000-4000-8000-000000000001",
        correlation_id="application-1",
        service_id="gbdfl.person.lookup.v1",
        sender_id="sc-workstation",
        recipient_id="gbdfl",
        message_time_ms=1780290000000,
        message_type="MESSAGE_TYPE_REQUEST",
        body_type="egov.v1.PersonQuery",
    )
    same("header", header, v["header"])
    body = stubs.individuals_pb2.PersonQuery(iin="850715300122").SerializeToString()
    same("body", body, v["body"])

    # From here on, work from the vector's bytes as carried.
    header, body = hx(v["header"]), hx(v["body"])
    same("sender signed bytes", signed_bytes(header, body), v["sender_signed_bytes"])
    sender = Signer("sc-workstation", v["sender_key_id"], sender_seed)
    gateway = Signer(GATEWAY_ID, v["gateway_key_id"], gateway_seed)
    envelope = seal(sender, header, body)
    same("sender signature", envelope.signatures[0].ed25519, v["sender_signature"])
    same(
        "countersigned bytes",
        countersigned_bytes(header, body, v["sender_key_id"], hx(v["sender_signature"])),
        v["countersigned_bytes"],
    )
    envelope = countersign(gateway, envelope)
    same("countersignature", envelope.signatures[1].ed25519, v["countersignature"])
    same("serialised envelope", envelope.SerializeToString(), v["envelope"])

    # The documented envelope verifies with a registry of the two vector keys...
    trust = TrustRegistry(
        [
            Member("sc-workstation", "sc-workstation", "", [TrustKey(v["sender_key_id"], "sc-workstation", hx(v["sender_public_key"]), None, None)]),
            Member(GATEWAY_ID, "gateway", "", [TrustKey(v["gateway_key_id"], GATEWAY_ID, hx(v["gateway_public_key"]), None, None)]),
        ]
    )
    parsed = stubs.envelope_pb2.Envelope()
    parsed.ParseFromString(hx(v["envelope"]))
    verified = verify_envelope(parsed, trust, expect_sender="sc-workstation", freshness_ms=None)
    if verified.body.iin != "850715300122":
        raise AssertionError("vector envelope body")
    done.append("vector envelope verifies")

    # ... and a single flipped bit anywhere signed is refused.
    for part in ("header", "body"):
        bad = stubs.envelope_pb2.Envelope()
        bad.CopyFrom(parsed)
        raw = bytearray(getattr(bad, part))
        raw[-1] ^= 0x01
        setattr(bad, part, bytes(raw))
        try:
            verify_envelope(bad, trust, freshness_ms=None)
        except EnvelopeError as e:
            if e.reason not in ("envelope.bad_signature", "envelope.malformed_header", "envelope.missing_field"):
                raise AssertionError(f"flipped {part}: refused with {e.reason}") from e
        else:
            raise AssertionError(f"flipped {part}: accepted")
    bad = stubs.envelope_pb2.Envelope()
    bad.CopyFrom(parsed)
    counter = bytearray(bad.signatures[1].ed25519)
    counter[0] ^= 0x80
    bad.signatures[1].ed25519 = bytes(counter)
    try:
        verify_envelope(bad, trust, freshness_ms=None)
    except EnvelopeError as e:
        if e.reason != "envelope.bad_countersignature":
            raise AssertionError(f"flipped countersignature: refused with {e.reason}") from e
    else:
        raise AssertionError("flipped countersignature: accepted")
    done.append("tampered vector envelopes are refused")
    return done


if __name__ == "__main__":
    for item in self_test():
        print(f"ok: vector {item}")
