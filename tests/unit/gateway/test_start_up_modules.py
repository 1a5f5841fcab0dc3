"""A worker at rest holds only what serving needs: libraries it uses only when asked are not loaded at start.

Every module loaded at start-up stays resident in every worker process, and peak RSS
of an export is that memory plus the export's own few megabytes. The app is built in a
fresh interpreter (as a ``serve --workers N`` worker builds it) from the demo mapping,
which has syncs, webhooks and MCP configured, and the modules it loaded are listed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import demo_environ

_BUILD = """
import json, sys
from gateway import create_app
from legacy_adapters.demo import DEMO_MAPPING_PATH
from legacy_adapters.mapping import load_mapping
create_app(load_mapping(DEMO_MAPPING_PATH))
print(json.dumps(sorted(sys.modules)))
"""

NOT_AT_START = {
    "pydantic": "Litestar's default pydantic plugins (no route takes or returns a pydantic model)",
    "markdown_it": "the console's runbook page, rendered when one is asked for",
}


def test_building_the_app_loads_no_library_a_request_does_not_need(demo_db_path: Path) -> None:
    env = {**os.environ, **demo_environ(demo_db_path)}
    done = subprocess.run(
        [sys.executable, "-c", _BUILD], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    loaded = set(json.loads(done.stdout.splitlines()[-1]))
    assert "gateway.app" in loaded and "litestar" in loaded  # the app was built
    found = {name: why for name, why in NOT_AT_START.items() if name in loaded}
    assert not found, f"loaded at start-up: {found}"
