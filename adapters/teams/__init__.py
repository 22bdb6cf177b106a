"""The Microsoft Teams channel of CareDesk.

Entry points:

* `configure(desk, config=TeamsConfig.from_settings(settings, env))` -- the Teams channel of a
                               process (`TeamsApp`), built once by the composition root
                               (`adapters.server.channels.Channels`);
* `mount(app, teams)`       -- adds `POST /api/messages` (Bot Framework messaging endpoint) to the
                               aiohttp server;
* `teams.send_proactive(user_key_or_email, response_or_replies)` -- a proactive message to a
                               user/conversation the bot has seen (True; False if never seen;
                               raises ProactiveDeliveryError if the connector fails);
* `build_package(app_id, out)` -- the Teams app package (zip) to upload.

botbuilder is only imported by `botbuilder_transport.py`, behind `transport.TeamsTransport`.
"""

from adapters.teams.app import MESSAGES_PATH, TeamsApp, configure, mount
from adapters.teams.config import TeamsConfig
from adapters.teams.package import build_package
from adapters.teams.proactive import ProactiveDeliveryError, send_proactive

__all__ = [
    "MESSAGES_PATH",
    "ProactiveDeliveryError",
    "TeamsApp",
    "TeamsConfig",
    "build_package",
    "configure",
    "mount",
    "send_proactive",
]
