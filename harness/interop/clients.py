"""The interop clients by name, in the order the reports list them. Their
Debian packages are installed with the others (tools/deps.py
INTEROP_PACKAGES); a client that is missing all the same says which
package to install when a case uses it (base.ClientBroken)."""

from .base import FEATURES
from .jsclients import Chromium, NodeWs
from .pyclients import Aiohttp, Websockets, Wsproto

CLIENTS = {c.name: c for c in (Chromium, NodeWs, Aiohttp, Wsproto, Websockets)}
NAMES = tuple(CLIENTS)


def with_feature(feature):
    """The names of the clients that can do `feature` (of base.FEATURES)."""
    if feature not in FEATURES:
        raise ValueError(f"{feature!r} is no client feature; the features: {', '.join(FEATURES)}")
    return [name for name, c in CLIENTS.items() if feature in c.features]
