"""A plain `pip install` of the package gives a working environment: no dependency overwrites another's files.

xds-protos (once needed for the CEL checked-AST classes) shipped stale copies of OpenTelemetry's protos; depending
on pip's unpack order they replaced opentelemetry-proto's and the OTLP exporter could not be imported.
"""

from __future__ import annotations

import importlib.metadata as metadata
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

from base_install_support import closure
from packaging.requirements import Requirement

# chdb and chdb-core are one project split in two; both ship chdb/__init__.py on purpose.
SAME_PROJECT = {frozenset({"chdb", "chdb-core"})}


def test_no_two_dependencies_ship_the_same_file() -> None:
    owners: dict[str, set[str]] = defaultdict(set)
    installed = closure([Requirement("activity[dev]")])
    assert {"activity", "opentelemetry-proto", "cel-expr-python", "chdb"} <= installed
    for name in installed:
        for path in metadata.distribution(name).files or []:
            text = str(path)
            if not text.startswith("..") and ".dist-info/" not in text and "__pycache__" not in text:
                owners[text].add(name)
    shared = {path: names for path, names in owners.items() if len(names) > 1 and frozenset(names) not in SAME_PROJECT}
    assert shared == {}


def test_the_otlp_exporter_imports() -> None:
    # A fresh interpreter, as `activity apiserver --tracing-config-file ...` would load it.
    code = (
        "from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter\n"
        "from opentelemetry.proto.common.v1.common_pb2 import InstrumentationScope\n"
        "print(OTLPSpanExporter.__name__, InstrumentationScope.DESCRIPTOR.full_name)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["OTLPSpanExporter", "opentelemetry.proto.common.v1.InstrumentationScope"]


def test_ci_and_the_image_install_the_package_plainly() -> None:
    # What they install is what the README's `pip install` gives: no step repairs it afterwards.
    repo = Path(__file__).resolve().parent.parent
    for script in (repo / ".ci" / "run", repo / "Dockerfile"):
        text = script.read_text()
        assert "--force-reinstall" not in text and "xds-protos" not in text, script.name
