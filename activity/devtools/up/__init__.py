"""`activity up`: the whole pipeline on one machine, in one process and one event loop (the embedded engine
allows one process per store directory): nats-server as a child process, migrations, the webhook receiver, the
consumer and the API server, with a generated CA and a kubeconfig for kubectl.

command (flags, friendly errors) → stack (start and stop order) → pki, kubeconfig, lock, demo, banner.
"""
