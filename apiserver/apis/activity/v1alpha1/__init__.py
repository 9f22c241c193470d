"""activity.miloapis.com/v1alpha1: AuditLogQuery's types, defaults, validation and OpenAPI definitions."""
