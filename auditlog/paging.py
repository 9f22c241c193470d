"""Page sizes of AuditLogQuery, the one place both sides read them: the server (its default and the default of
--max-page-size) and the kubectl plugin (what its help says a page holds, and the page --all-pages asks for).
Imports nothing, so the plugin's start-up does not pay for it."""

DEFAULT_LIMIT = 100  # events in a page when spec.limit is omitted
MAX_PAGE_SIZE = 1000  # the default of the server's --max-page-size: the largest spec.limit it accepts
