"""The JetStream → ClickHouse consumer: pull → screen → batch → insert → ack (see consumer.py for the loop)."""
