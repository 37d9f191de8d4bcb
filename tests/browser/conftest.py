"""Browser tests drive Debian's headless Chromium through Selenium and /usr/bin/chromedriver."""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "browser: drives headless Chromium (from `make browser`)")
