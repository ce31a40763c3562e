"""Warnings pivot's Python side prints for the user (errors are raised, never printed here).

They go to stderr as `warning: <message>` lines, the same shape the Rust printer uses, so they
read alike whichever side found the problem.
"""

from __future__ import annotations

import sys


def warn(message: str) -> None:
    """Print one warning line to stderr."""
    stream = sys.stderr
    if stream is None:  # pythonw-style embedding without a stderr: nowhere to report
        return
    stream.write(f"warning: {message}\n")
    stream.flush()
