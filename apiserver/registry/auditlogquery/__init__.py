"""AuditLogQuery: strategy, create handler, query service, cursor, time range, scope and CEL filter."""
