"""Start-up work for the action server, through rasa-sdk's own plugin hook.

rasa-sdk looks for a package with exactly this name (rasa_sdk/plugin.py) and calls `init_hooks`; its
`attach_sanic_app_extensions` hook then gets the action server's Sanic app before it starts. We use it to mask every
log line of the action server (weiquan/edge/logmask.py) without doing anything at import time. The Rasa server gets the
same from its channels' start-up listener (weiquan/edge/faults.py) and its tracker store
(weiquan/stores/tracker_store.py).
"""
from __future__ import annotations

from typing import Any

import pluggy

hookimpl = pluggy.HookimplMarker("rasa_sdk")


async def mask_logs(app: Any, loop: Any = None) -> None:
    from weiquan.edge import logmask

    logmask.install()


class ActionServerStartup:
    @hookimpl
    def attach_sanic_app_extensions(self, app: Any) -> None:
        app.register_listener(mask_logs, "before_server_start")


def init_hooks(manager: pluggy.PluginManager) -> None:
    manager.register(ActionServerStartup())
