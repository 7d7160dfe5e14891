"""`python -m batchkit.demo`: run the demo (see `--help`)."""
from __future__ import annotations

from .cli import main

raise SystemExit(main())
