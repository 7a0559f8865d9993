"""Whether a long loop draws a progress bar: only above a size, and never when bars are off.

`simlab` turns bars off when its output is piped or logged (`TQDM_DISABLE=1`, set by the CLI); a
library call given `show_progress_bar=True` explicitly would still draw one, since tqdm reads the
environment only for arguments it was not given. Every `show_progress_bar=` goes through `wants_bar`.
"""

from __future__ import annotations

import os


def wants_bar(n: int, at_least: int) -> bool:
    """A progress bar for `n` items: from `at_least` items up, unless bars are off (`TQDM_DISABLE`)."""
    return n > at_least and os.environ.get("TQDM_DISABLE", "").lower() not in ("1", "true", "yes")
