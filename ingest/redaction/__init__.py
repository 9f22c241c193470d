"""Credentials never reach the store: Secret data, service account tokens, TokenReview tokens and configured
paths are replaced at ingest by markers (`auditlog.redaction`) before an event is published anywhere."""

from ingest.redaction.paths import PathRule, parse_path, parse_rule
from ingest.redaction.redactor import Redactor
from ingest.redaction.settings import RedactionSettings

__all__ = ["PathRule", "RedactionSettings", "Redactor", "parse_path", "parse_rule"]
