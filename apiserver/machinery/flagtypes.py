"""argparse types for the server's numeric flags: a refused value names what to write instead."""

from __future__ import annotations

import argparse

_BINARY_SUFFIXES = {"": 1, "Ki": 1024, "Mi": 1024**2, "Gi": 1024**3, "Ti": 1024**4}


def positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} must be at least 1")
    return value


def byte_count(text: str) -> int:
    """A byte count, optionally with a Kubernetes binary suffix: 1073741824, 1Gi, 512Mi."""
    number = text.rstrip("KMGTi")
    suffix = text[len(number) :]
    if suffix not in _BINARY_SUFFIXES or not number.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r} is not a byte count: write e.g. 1Gi, 512Mi or 1073741824")
    return int(number) * _BINARY_SUFFIXES[suffix]
