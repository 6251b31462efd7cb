"""Is the Hugging Face Hub reachable? Asked only when a Hub model is requested.

Without this, transformers retries an unreachable Hub for about a minute before failing; a
student who typed a Hub id on an offline laptop would wait that long for the message. One TCP
connection (3 s at most) answers instead, and the answer is remembered for a minute.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from urllib.parse import urlparse

_TTL = 60.0
_cache: dict[str, tuple[float, bool]] = {}
_lock = threading.Lock()


def endpoint() -> tuple[str, int]:
    url = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    return url.hostname or "huggingface.co", url.port or (443 if url.scheme == "https" else 80)


def reachable(timeout: float = 3.0) -> bool:
    """False when HF_HUB_OFFLINE is set or no TCP connection to the Hub opens within ``timeout``."""
    if os.environ.get("HF_HUB_OFFLINE", "") not in ("", "0", "false", "False"):
        return False
    host, port = endpoint()
    key = f"{host}:{port}"
    with _lock:
        hit = _cache.get(key)
        if hit and time.monotonic() - hit[0] < _TTL:
            return hit[1]
    try:
        with socket.create_connection((host, port), timeout=timeout):
            ok = True
    except OSError:
        ok = False
    with _lock:
        _cache[key] = (time.monotonic(), ok)
    return ok
