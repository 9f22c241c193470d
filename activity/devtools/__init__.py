"""The developer tools: `activity up`, `loadgen`, `bench` and the dashboards' generator and previews.

Nothing that ships (webhook, consumer, API server, migrate, plugin) imports from here; the tools' own dependencies
come with the `tools` extra, never with a plain install or the server image.
"""

EXTRA = "tools"
INSTALL_HINT = f"pip install 'activity[{EXTRA}]'"
