"""The engine's own errors share one base class.

A `StudioError` is a mistake the user can fix (a bad config value, a missing file, a run that
cannot resume): its message says what is wrong and what to do, and every front end shows that
message alone. Anything else is a bug and keeps its type and traceback.
"""

from __future__ import annotations


class StudioError(Exception):
    """An error the user can act on; the message names the thing and the fix."""
