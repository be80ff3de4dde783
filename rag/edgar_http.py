"""HTTP for SEC EDGAR under its fair-access policy: declared User-Agent, <= 10 requests/s, retries.

SEC blocks clients that do not declare who they are ("Company Name admin@company.com" in the
User-Agent) or that exceed 10 requests per second, and answers them with 403 or 429 for a while.
So every request goes through one `EdgarClient`: it sends the declared User-Agent and
`Accept-Encoding: gzip`, spaces request *starts* at least 1/rate seconds apart across all threads,
and retries 429, 5xx and connection errors with exponential backoff plus jitter, honouring
`Retry-After`. 404 and 403 are not retried: the URL is wrong or SEC refuses us, and hammering it
would only prolong a block.

Stdlib `urllib` on purpose: one GET with a few headers needs no extra dependency, and handling
`Content-Encoding: gzip` ourselves keeps the decoded bytes exactly what SEC sent.
"""

from __future__ import annotations

import gzip
import http.client
import random
import re
import threading
import time
import urllib.error
import urllib.request
import zlib
from collections.abc import Callable
from email.utils import parsedate_to_datetime

from rag.errors import ConfigError, SourceError

MAX_RATE = 10.0  # requests/s: SEC's published ceiling for automated access
RETRY_STATUS = frozenset({429, 500, 502, 503, 504})
_EMAIL_RE = re.compile(r"[^@\s]+@[^@\s]+\.[A-Za-z]{2,}")


class EdgarHTTPError(SourceError):
    """A request that failed for good; `status` is the HTTP status, 0 for connection errors."""

    def __init__(self, message: str, url: str, status: int = 0):
        super().__init__(message)
        self.url = url
        self.status = status


def check_user_agent(user_agent: str) -> str:
    """The declared User-Agent, or ConfigError saying how to set one (SEC requires name + e-mail)."""
    ua = (user_agent or "").strip()
    words = ua.split()
    emails = [w for w in words if _EMAIL_RE.fullmatch(w.strip("<>()"))]
    if not emails or len(words) == len(emails):  # needs an e-mail and a name beside it
        got = f" (got {ua!r})" if ua else ""
        raise ConfigError(
            "EDGAR requires a declared User-Agent with a company or person name and a contact e-mail "
            f"(SEC fair-access policy){got}: set RESEARCHDESK_EDGAR_USER_AGENT, e.g. "
            '"Acme Research research@acme.com"'
        )
    return ua


class RateLimiter:
    """Spaces call starts >= 1/rate seconds apart, across threads (a reservation clock, no bursts).

    A token bucket would allow a burst of `rate` requests at once; SEC counts per second, so even
    spacing is the safe reading of "10 requests per second".
    """

    def __init__(self, rate: float, clock: Callable[[], float] = time.monotonic):
        if not 0 < rate <= MAX_RATE:
            raise ConfigError(f"EDGAR rate limit must be in (0, {MAX_RATE:g}] requests/s, not {rate}")
        self.interval = 1.0 / rate
        self._clock = clock
        self._next = 0.0
        self._lock = threading.Lock()

    def wait(self) -> None:
        with self._lock:  # reserve a slot, then sleep outside the lock so other threads can queue
            now = self._clock()
            slot = max(now, self._next)
            self._next = slot + self.interval
        delay = slot - now
        if delay > 0:
            time.sleep(delay)

    def hold(self, seconds: float) -> None:
        """Push every thread's next slot back (a Retry-After applies to the client, not one request)."""
        with self._lock:
            self._next = max(self._next, self._clock() + seconds)


def _retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date); None if absent/unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


def _decode(body: bytes, encoding: str | None) -> bytes:
    encoding = (encoding or "").lower().strip()
    if encoding == "gzip":
        return gzip.decompress(body)
    if encoding == "deflate":
        return zlib.decompress(body)
    return body


class EdgarClient:
    """GET with SEC's required headers, a shared rate limit and retries. Thread-safe."""

    def __init__(
        self,
        user_agent: str,
        www_url: str = "https://www.sec.gov",
        data_url: str = "https://data.sec.gov",
        rate: float = MAX_RATE,
        max_retries: int = 5,
        backoff: float = 0.5,  # seconds; attempt n waits backoff * 2**n plus up to as much jitter
        max_wait: float = 120.0,  # cap for one backoff or Retry-After wait, seconds
        timeout: float = 30.0,
    ):
        self.user_agent = check_user_agent(user_agent)
        self.www_url = www_url.rstrip("/")
        self.data_url = data_url.rstrip("/")
        self.limiter = RateLimiter(rate)
        self.max_retries = max_retries
        self.backoff = backoff
        self.max_wait = max_wait
        self.timeout = timeout
        self.requests = 0  # requests sent, retries included (for the summary)
        self._count_lock = threading.Lock()

    def _headers(self) -> dict[str, str]:
        return {"User-Agent": self.user_agent, "Accept-Encoding": "gzip, deflate"}

    def _backoff(self, attempt: int) -> float:
        base = self.backoff * 2**attempt
        return min(self.max_wait, base + random.uniform(0, base))

    def get(self, url: str) -> bytes:
        """The decoded body of `url`; EdgarHTTPError naming the URL once retries are exhausted."""
        last, last_status = "", 0
        for attempt in range(self.max_retries + 1):
            self.limiter.wait()
            with self._count_lock:
                self.requests += 1
            request = urllib.request.Request(url, headers=self._headers())
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as response:
                    return _decode(response.read(), response.headers.get("Content-Encoding"))
            except urllib.error.HTTPError as exc:
                status = exc.code
                if status == 404:
                    raise EdgarHTTPError(f"404 Not Found: {url}", url, 404) from exc
                if status == 403:
                    raise EdgarHTTPError(
                        f"403 Forbidden: {url}. SEC answers 403 to requests without a declared "
                        "User-Agent (name and e-mail) or from clients it has blocked for exceeding "
                        "10 requests/s; check RESEARCHDESK_EDGAR_USER_AGENT and wait before retrying",
                        url,
                        403,
                    ) from exc
                if status not in RETRY_STATUS:
                    raise EdgarHTTPError(f"HTTP {status} {exc.reason}: {url}", url, status) from exc
                last, last_status = f"HTTP {status}", status
                wait = _retry_after(exc.headers.get("Retry-After") if exc.headers else None)
                if wait is not None:
                    wait = min(wait, self.max_wait)
                    self.limiter.hold(wait)
                    wait = 0.0  # the limiter now makes every thread wait; no extra sleep here
                else:
                    wait = self._backoff(attempt)
            except (urllib.error.URLError, http.client.HTTPException, ConnectionError, TimeoutError) as exc:
                last, last_status = f"connection error ({getattr(exc, 'reason', exc)})", 0
                wait = self._backoff(attempt)
            except (OSError, EOFError, zlib.error) as exc:  # truncated or corrupt compressed body
                last, last_status = f"bad response body ({exc})", 0
                wait = self._backoff(attempt)
            if attempt < self.max_retries and wait > 0:
                time.sleep(wait)
        raise EdgarHTTPError(
            f"{url}: giving up after {self.max_retries + 1} attempts ({last})", url, last_status
        )

    def www(self, path: str) -> str:
        return f"{self.www_url}/{path.lstrip('/')}"

    def data(self, path: str) -> str:
        return f"{self.data_url}/{path.lstrip('/')}"
