"""Generic API-server machinery that knows no resource: request context, Status and field errors, negotiation,
decoding, create handling, discovery, OpenAPI, health, metrics, tracing, logs, certificates, registration."""
