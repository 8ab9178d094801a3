"""The rich console every command prints its tables with."""

from rich.console import Console


def wide_console(stderr: bool = False) -> Console:
    """A terminal's own width; 200 columns into a pipe or a log file, where rich would
    otherwise squeeze wide tables into 80 and cut their cells."""
    probe = Console(stderr=stderr)
    return probe if probe.is_terminal else Console(stderr=stderr, width=200)
