"""The Nats-Msg-Id of each message the webhook publishes: what JetStream's duplicate window collapses.

JetStream keeps one message per id inside the stream's duplicate window, so only exact copies may share an id.
kube-apiserver re-sends a failed batch byte for byte, so a copy is the same bytes: the id is a SHA-256 of the
published bytes. An id made of auditID and stage would let a client hide a second request behind a reused
`Audit-ID` header (kube-apiserver takes it from the client), and was lossy for auditIDs holding CR or LF.
SHA-256 is collision-resistant against a sender who controls most of an event, and hardware-accelerated.

An event's id ends with `-<stage>` so that the consumer can skip the stages it does not store without parsing the
payload; the hex digest holds no `-`, so the stage is whatever follows the last one.
"""

from __future__ import annotations

import hashlib


def event_msg_id(payload: bytes, stage: str) -> str:
    """The id of an event published as `payload` (its stage is inside the bytes too: the suffix adds nothing to
    what is compared, it is only read back by `stage_named`)."""
    return f"{hashlib.sha256(payload).hexdigest()}-{stage}"


def stage_named(msg_id: str) -> str:
    """The stage an event's id names (`event_msg_id`); any text for an id made otherwise."""
    return msg_id[msg_id.rfind("-") + 1 :]


def dead_letter_msg_id(payload: bytes, reason: str) -> str:
    """The same bad item re-sent in a retried batch is the same dead letter: JetStream keeps one. The reason
    follows a NUL, which JSON never holds raw, so (payload, reason) pairs cannot run into each other."""
    digest = hashlib.sha256(payload)
    digest.update(b"\0" + reason.encode("utf-8", "surrogatepass"))
    return f"deadletter-{digest.hexdigest()}"
