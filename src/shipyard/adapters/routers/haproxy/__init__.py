"""HAProxy in front of one environment, driven through its Runtime API (no reload to move traffic).

- ``router.py``   the adapter (``ports.routers.TrafficRouter``): composes the three below
- ``process.py``  the process supervisor: start, ``haproxy -c``, reload, stop, adopt
- ``render.py``   the config renderer (pure): a layout to haproxy.cfg, meta and segment maps
- ``runtime.py``  the Runtime API client: servers, maps, stats over the admin socket
- ``layout.py``   slot groups, slots and weights as data (pure); ``paths.py`` files and sockets
- ``stats.py``    the metrics side (``ports.metrics.RouterCounters``): counters per candidate
"""

from shipyard.adapters.routers.haproxy.layout import split_weights
from shipyard.adapters.routers.haproxy.process import HAPROXY
from shipyard.adapters.routers.haproxy.router import HaproxyRouter
from shipyard.adapters.routers.haproxy.stats import HaproxyCounters

__all__ = ["HAPROXY", "HaproxyCounters", "HaproxyRouter", "split_weights"]
