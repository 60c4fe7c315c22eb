"""Where cotdistill keeps downloaded and derived files that outlive a run folder."""

import os
from pathlib import Path


def cache_dir() -> Path:
    """$COTDISTILL_CACHE, else $XDG_CACHE_HOME/cotdistill, else ~/.cache/cotdistill."""
    env = os.environ.get("COTDISTILL_CACHE")
    if env:
        return Path(env)
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "cotdistill"
