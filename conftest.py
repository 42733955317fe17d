"""Root pytest configuration: every test and every executed notebook runs in FAST mode, headless."""

import os
import sys
from pathlib import Path

# Set before any kernel or subprocess starts, so notebooks executed by nbmake inherit them.
os.environ.setdefault("NCBOOK_FAST", "1")
os.environ.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")

# `pytest --nbmake book/...` executes notebooks in this process: the same fix of the nbclient stall
# after widget cells that the book build loads (see _ext/nbclient_widget_sync.py).
sys.path.insert(0, str(Path(__file__).parent / "_ext"))
import nbclient_widget_sync  # noqa: E402

nbclient_widget_sync.apply()
