"""The audit webhook receiver: kube-apiserver EventList POSTs in, one durable JetStream message per event out.

Data flow, one module per step: receiver (the HTTP surface) → decoding (body → EventList items) → messages (items
→ event messages and dead letters) → publisher (pipelined publish; 200 only once every PubAck is back).
`service.start_webhook` hosts it all in a caller's event loop; `command` is the CLI around it.
"""

from ingest.webhook.service import WebhookHandle, start_webhook
from ingest.webhook.settings import WebhookSettings

__all__ = ["WebhookHandle", "WebhookSettings", "start_webhook"]
