"""ProfileInfo: per-op call counts and times of a `run(..., profile=True)`, printable as a table."""
from __future__ import annotations

__all__ = ['ProfileInfo']


class ProfileInfo:
    """Rows of (op, calls, total seconds, mean microseconds) in the order the ops first ran; `print(profile_info)` shows them."""

    def __init__(self, table: dict[str, list]) -> None:
        self.rows = [(label, count, total, 1e6 * total / count if count else 0.0)
                     for label, (count, total) in table.items()]

    def as_dict(self) -> dict[str, dict]:
        return {label: {'calls': n, 'total_s': t, 'mean_us': m} for label, n, t, m in self.rows}

    def __str__(self) -> str:
        width = max([len('op'), *(len(r[0]) for r in self.rows)])
        lines = [f"{'op':<{width}}  {'calls':>7}  {'total s':>9}  {'mean us':>9}"]
        lines += [f'{label:<{width}}  {n:>7}  {t:>9.4f}  {m:>9.1f}' for label, n, t, m in self.rows]
        return '\n'.join(lines)

    __repr__ = __str__
