"""How numbers and durations read to a user: the same in the terminal, the app and the reports."""

from __future__ import annotations


def format_number(value: float | None, digits: int) -> str:
    """`value` to `digits` decimals; "-" when there is none (not measured yet, or undefined)."""
    return "-" if value is None else f"{value:.{digits}f}"


def format_duration(seconds: float | None) -> str:
    """`mm:ss`, or `h:mm:ss` past an hour; `--:--` when unknown."""
    if seconds is None:
        return "--:--"
    seconds = int(seconds)
    if seconds >= 3600:
        return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"
    return f"{seconds // 60:02d}:{seconds % 60:02d}"


def format_range_test(event: dict) -> str:
    """An `lr_range` event (studio.lr_range) in one line: the rate chosen, by which rule, and the other."""
    steepest = f", steepest descent at {event['steepest']:.1e}" if event.get("steepest") else ""
    return (f"lr {event['chosen']:.1e} chosen by range test ({event['rule']}{steepest}; "
            f"{len(event.get('rates') or [])} steps)")
