"""What the ``cnnvsdnn data`` commands print (rich tables)."""

from __future__ import annotations

from rich.table import Table

from ..ui import wide_console

console = wide_console()


def _size(n: int) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return ""


def print_fetched(ds) -> None:
    console.print(f"{ds.name}: {len(ds.train_y)} train + {len(ds.test_y)} test images "
                  f"{ds.info.shape} from {ds.source}", markup=False, highlight=False,
                  soft_wrap=True)


def print_verify(rows) -> None:
    table = Table("dataset", "file", "status")
    for name, path, status in rows:
        table.add_row(name, path, status, style=None if status.startswith("ok") else "red")
    console.print(table)


def print_status(rows) -> None:
    table = Table("dataset", "status", "source", "size", "directory")
    for r in rows:
        table.add_row(r["dataset"], r["status"], r["source"], _size(r["bytes"]), r["dir"])
    console.print(table)
