"""Writing a benchmark's results JSON: atomically, so that a stop never leaves half a file.

Every resumable benchmark saves its JSON after each unit of work; a run killed while it writes
keeps the previous file whole (the new one is written beside it, then renamed over it).
"""

from __future__ import annotations

from collections.abc import Mapping
import json
import os
from pathlib import Path
from typing import Any


__all__ = ["save_json"]


def save_json(data: Mapping[str, Any], path: Path) -> None:
    """Write ``data`` to ``path`` as indented, key-sorted JSON, replacing it atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    os.replace(tmp, path)
