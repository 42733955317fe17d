"""Root pytest configuration: every test and every executed notebook runs in FAST mode, headless."""

import os

# Set before any kernel or subprocess starts, so notebooks executed by nbmake inherit them.
os.environ.setdefault("NCBOOK_FAST", "1")
os.environ.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")
