"""The JetStream → ClickHouse consumer, following the data:

- `puller`: raw `$JS.API.CONSUMER.MSG.NEXT` pull requests, messages arriving on a callback
- `screening`: one payload → stored row, filtered stage, or poison (with the reason)
- `batch`: messages held unacked until their batch is stored
- `partitions`: a batch cut into inserts of at most 100 days (partitions) each
- `sink`: dead letters, insert (outages retried with backoff; refused rows isolated), then ack each message
- `consumer`: the loop tying them together (`Consumer(settings, nc, store)`, `run()` / `stop()`)
- `settings`, `metrics`, `probes`, `command`: what it is told, what it reports, how it is run
"""
