"""emoview's own version: for `emoview --version`, `emoview info` and the metadata export writes."""

from __future__ import annotations

import re
from importlib import metadata
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def emoview_version() -> str:
    """The installed package's version, or pyproject's when running from a checkout."""
    try:
        return metadata.version("emoview")
    except metadata.PackageNotFoundError:
        pyproject = REPO / "pyproject.toml"
        match = re.search(r'^version\s*=\s*"([^"]+)"', pyproject.read_text(), re.M) if pyproject.is_file() else None
        return match.group(1) if match else "unknown"
