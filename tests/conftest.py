"""Test-session settings: the pack cache lives in a folder of the session's own."""

from __future__ import annotations

import os
import tempfile

os.environ.setdefault("REIRRAD_CACHE_DIR", tempfile.mkdtemp(prefix="reirrad-test-cache-"))
