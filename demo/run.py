"""`make demo`: a thin entry to `python -m batchkit.demo` (see `python -m batchkit.demo --help`)."""
from __future__ import annotations

from batchkit.demo import main

if __name__ == '__main__':
    raise SystemExit(main())
