"""What the machine has, read once: `os.cpu_count()` reads a file under /sys on every call (7 us here), and the
per-run and per-batch paths ask for it."""
from __future__ import annotations

import os

__all__ = ['CPUS']

CPUS: int = os.cpu_count() or 1
