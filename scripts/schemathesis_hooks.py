"""Schemathesis hooks for scripts/schemathesis.sh: what an OpenAPI document cannot say.

A schema tells which requests are well formed, not which bytes are audio, which digest
matches them, which cursor the server handed out or which users exist. Here generated values
of that kind are real ones, so that the server's answer depends on the rest of the request:
file bytes are audio (else every upload, valid or not, would be refused as 415), a
well-formed digest matches them, a list asks for no cursor the server never issued,
recipients are a user who exists (the run's own, whom a send leaves out), and webhook and
push targets are on this machine (push with a browser's real keys). Values generated to break the schema (a number for a header, a body of
the wrong type) are left as they are.

The event streams are left out (schemathesis.sh excludes them): they answer with a stream
that ends only when the client leaves, which a generated request never does. A long-poll of
the inbox waits at most a second, so that holding on purpose is not taken for slowness.

The run also keeps the user it signs in with: deleting it would make every later request
a 401.
"""

import base64
import hashlib
import io
import math
import os
import re
import struct
import wave

import schemathesis
from hypothesis import strategies as st
from schemathesis.core.parameters import ParameterLocation
from schemathesis.generation.modes import GenerationMode
from schemathesis.transport.serialization import Binary

UPLOADS = ("/api/v1/notes", "/post", "/audio")
# The user the run signs in as: a recipient who exists.
OWN_EMAIL = os.environ.get("HARK_SCHEMATHESIS_EMAIL", "schemathesis@example.com")
LISTS = ("/api/v1/notes", "/list")
# The `Content-Digest` pattern of the document.
DIGEST = re.compile(r"^[\t ]*[A-Za-z0-9_-]+=:[A-Za-z0-9+/=]*:[\t ]*(,[\t ]*[A-Za-z0-9_-]+=:[A-Za-z0-9+/=]*:[\t ]*)*$")


def _tone() -> bytes:
    """Half a second of a 440 Hz tone: a WAV file the server accepts."""
    rate = 8000
    frames = b"".join(
        struct.pack("<h", int(8000 * math.sin(2 * math.pi * 440 * n / rate))) for n in range(rate // 2)
    )
    out = io.BytesIO()
    with wave.open(out, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(frames)
    return out.getvalue()


AUDIO = _tone()
AUDIO_DIGEST = "sha-256=:" + base64.b64encode(hashlib.sha256(AUDIO).digest()).decode() + ":"

# Raw audio travels as its bytes, labelled as the one format these tests send.
schemathesis.serializer.alias("audio/wav", "application/octet-stream")


# Every generated file is this audio; the schema's `format: binary` says no more than bytes.
schemathesis.openapi.format("binary", st.just(Binary(AUDIO)))


def _labelled_valid(case, location) -> bool:
    meta = case.meta
    if meta is None or meta.generation.mode != GenerationMode.POSITIVE:
        return False
    component = meta.components.get(location)
    return component is not None and component.mode == GenerationMode.POSITIVE


@schemathesis.hook
def map_case(context, case):
    if case.method == "POST" and case.path in UPLOADS and case.headers:
        # The generated body is never gzipped; no encoding is just as valid.
        if str(case.headers.get("Content-Encoding", "")).lower() in ("gzip", "x-gzip"):
            case.headers["Content-Encoding"] = "identity"
        digest = case.headers.get("Content-Digest")
        # A well-formed digest is the audio's (which verifies whatever the body's framing),
        # and so is one in headers labelled valid: some of those come with a digest that is
        # not even a string.
        if digest is not None and (DIGEST.match(str(digest)) or _labelled_valid(case, ParameterLocation.HEADER)):
            case.headers["Content-Digest"] = AUDIO_DIGEST
    if case.method == "GET" and case.path in LISTS and case.query and case.query.get("cursor"):
        del case.query["cursor"]
    if _labelled_valid(case, ParameterLocation.QUERY) and case.query:
        # Recipients and senders who exist; no channel, as the run has none.
        if case.method == "POST" and case.path in UPLOADS:
            if "to" in case.query:
                case.query["to"] = OWN_EMAIL
            case.query.pop("channel", None)
        if case.path == "/api/v1/inbox" and "sender" in case.query:
            case.query["sender"] = OWN_EMAIL
    if case.path == "/api/v1/inbox" and case.query and case.query.get("wait") is not None:
        try:
            wait = int(case.query["wait"])
        except (TypeError, ValueError):
            wait = None
        if wait is not None and 1 < wait <= 60:
            case.query["wait"] = 1
    if _labelled_valid(case, ParameterLocation.BODY) and isinstance(case.body, dict):
        if case.method == "POST" and case.path in UPLOADS:
            if "to" in case.body:
                case.body["to"] = OWN_EMAIL
            case.body.pop("channel", None)
        if case.path == "/api/v1/notes/{id}/send":
            case.body = {"to": [OWN_EMAIL]}
        if case.path == "/api/v1/webhooks" and case.method == "POST":
            case.body["url"] = "http://127.0.0.1:9/hook"
        if case.path == "/api/v1/push/subscriptions" and case.method == "POST":
            # A browser's subscription: the user agent keys of RFC 8291's example.
            case.body["endpoint"] = "http://127.0.0.1:9/push"
            case.body["keys"] = {
                "p256dh": "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4",
                "auth": "BTBZMqHH6r4Tts7J_aSIgg",
            }
    return case


def _unsendable_form(case) -> bool:
    """A form carries text, and part names travel in headers: a part named with a control
    character cannot be sent, nor can a value generated to be of another type than text
    (a null arrives as the text `null`, which is valid)."""
    if case.media_type != "multipart/form-data" or not isinstance(case.body, dict):
        return False
    if any(any(ord(c) < 32 or ord(c) == 127 for c in name) for name in case.body):
        return True
    meta = case.meta
    body = meta.components.get(ParameterLocation.BODY) if meta is not None else None
    return body is not None and body.mode == GenerationMode.NEGATIVE


@schemathesis.hook
def filter_case(context, case):
    if _unsendable_form(case):
        return False
    meta = case.meta
    # Some generated cases are labelled valid as a whole while a part of them was generated
    # to break the schema; the server rightly refuses them, so they test nothing.
    if meta is not None and meta.generation.mode == GenerationMode.POSITIVE:
        if any(component.mode == GenerationMode.NEGATIVE for component in meta.components.values()):
            return False
    own = os.environ.get("HARK_SCHEMATHESIS_USER_ID")
    return not (
        case.method == "DELETE" and case.path == "/api/v1/users/{id}" and case.path_parameters.get("id") == own
    )
