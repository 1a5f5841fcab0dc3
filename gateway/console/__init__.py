"""The operator's console at ``/admin``: a static page (``page.py``) over the admin API (``api.py``).

``syncs.py`` reads and acts on the syncs through the sync state store and engine;
``requests.py`` keeps the request counts the charts draw.
"""

from __future__ import annotations

from gateway.console.api import console_api_handlers
from gateway.console.page import console_page_handlers
from gateway.console.requests import RequestCounter
from gateway.console.syncs import SyncConsole

__all__ = ("RequestCounter", "SyncConsole", "console_api_handlers", "console_page_handlers")
