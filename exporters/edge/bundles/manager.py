"""The device side of bundles: pull, check, apply atomically, keep the last known good.

One thread (``run``) does all of it, so two bundles are never applied at
once: every ``poll_interval`` (jittered, so a fleet that restarts together
does not pull together) it asks the bundle URL with ``If-None-Match``, and
every second it picks up bundles imported by hand into ``incoming/``.

A bundle is applied only when every check of ``read_bundle`` passed, and in
this order: the agent installs it (``install``: the rules swapped under the
rule window's lock), then the store records it as applied. A refused bundle
is counted by reason, logged with what to fix and shown by ``modelmon edge
status``; the running configuration stays. The ETag of a refused bundle is
remembered, so the same bad bundle is neither downloaded nor counted again
until the server offers another one.

Who wins: the bundle URL is the fleet's source of truth whenever the device
reaches it; a bundle imported by hand runs until the URL offers a different
one. Settings of the device's own config win over the bundle's (the agent's
``install`` applies that rule). ``install`` may refuse a bundle too, for
what only the device can check (a collector it does not have): it raises
BundleRefused before it changed anything.
"""

from __future__ import annotations

import base64
import logging
import random
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .format import MAX_BUNDLE_BYTES, Bundle, BundleRefused, read_bundle
from .http_get import FETCH_ERRORS, BundleFetcher
from .signing import Verifier, VerifierUnavailable
from .store import BundleStore, StoredBundle
from .telemetry import BundleMetrics

if TYPE_CHECKING:
    from modelmon.exporters.edge.config import BundleConfig

    from .apply import BundleInstaller

log = logging.getLogger(__name__)

INCOMING_EVERY = 1.0  # seconds between looks into incoming/
LOG_EVERY = 60.0  # seconds between two log lines about a failing pull


class BundleManager:
    def __init__(self, config: BundleConfig, directory: Path, metrics: BundleMetrics,
                 install: Callable[[Bundle], None]) -> None:
        from .signing import subprocess_verifier

        self.config = config
        self.store = BundleStore(directory)
        self.metrics = metrics
        self._install = install
        self._verifier: Verifier | None = (
            subprocess_verifier(config.public_key) if config.public_key is not None else None)
        self.current: StoredBundle | None = None
        self.bundle: Bundle | None = None
        self.last_success: float | None = None
        self.last_refusal: dict[str, Any] | None = None
        self.last_error: str = ""
        self._offered_etag: str | None = None
        self._offered_refused = False
        self._last_logged = 0.0
        self._fetcher: BundleFetcher | None = None
        self._taken: set[str] = set()  # imported files applied but not removable
        # Told of each bundle applied (bundle, source, the bundle it replaced) and
        # refused (refusal, source, the refused file): the agent's ECS events.
        self.on_applied: Callable[[Bundle, str, Bundle | None], None] | None = None
        self.on_refused: Callable[[BundleRefused, str, bytes | None], None] | None = None
        # What applies bundles to the agent (its install), for attach_monitor.
        self.installer: BundleInstaller | None = None

    # -- checking and applying ----------------------------------------------

    def check(self, data: bytes) -> Bundle:
        return read_bundle(data, self._verifier,
                           require_signature=not self.config.allow_unsigned)

    def restore(self) -> Bundle | None:
        """Apply the last known good bundle from disk (at start); a stored bundle
        that no longer passes the checks (damaged) is skipped for the one before it."""
        for entry in self.store.entries():
            try:
                # Signed bundles were verified before the store took them: at start their
                # hashes (the manifest's is the entry's name) show they are intact, and no
                # child process runs a signature check again.
                bundle = read_bundle(self.store.read(entry), None, require_signature=False)
                if bundle.sha256 != entry.sha256:
                    raise BundleRefused("checksum", f"its manifest's sha256 {bundle.sha256} is "
                                        f"not the one stored ({entry.sha256})")
            except OSError as exc:
                log.error("stored bundle %s (%s) cannot be read (%s); trying the one before",
                          entry.version, entry.sha256[:12], exc)
                continue
            except BundleRefused as exc:
                self._refuse(exc, f"stored bundle {entry.version}")
                continue
            try:
                self._install(bundle)
            except BundleRefused as exc:  # e.g. a collector this device no longer has
                self._refuse(exc, f"stored bundle {entry.version}")
                continue
            self._applied(bundle, entry)
            self._offered_etag = entry.etag
            confirmed = self.store.confirmed_at()
            if self.config.url is not None and confirmed is not None:
                self.last_success = confirmed
                self.metrics.confirmed(confirmed)
            log.info("bundle %s (%s) restored from %s", bundle.version, bundle.sha256[:12],
                     self.store.directory)
            return bundle
        return None

    def offer(self, data: bytes, *, source: str, etag: str | None = None) -> str:
        """Check ``data`` and apply it; returns applied, unchanged, refused, or failed
        when the signature could not be checked at all."""
        try:
            bundle = self.check(data)
        except BundleRefused as exc:
            self._refuse(exc, source, data)
            return "refused"
        except VerifierUnavailable as exc:  # no verdict: tried again, not refused
            self.last_error = str(exc)[:300]
            return "failed"
        if self.current is not None and bundle.sha256 == self.current.sha256:
            if (etag, source) != (self.current.etag, self.current.source):
                self.current = self.store.set_etag(self.current, etag, source)
            return "unchanged"
        try:
            self._install(bundle)
        except BundleRefused as exc:  # nothing changed: the running configuration stays
            self._refuse(exc, source, data)
            return "refused"
        entry = self.store.save(data, bundle.sha256, bundle.version, source, etag)
        self._applied(bundle, entry)
        log.info("bundle %s (%s) applied from %s", bundle.version, bundle.sha256[:12], source)
        return "applied"

    def _applied(self, bundle: Bundle, entry: StoredBundle) -> None:
        previous, self.bundle, self.current = self.bundle, bundle, entry
        self.metrics.applied(bundle.version, bundle.sha256, bundle.models)
        self._tell(self.on_applied, bundle, entry.source, previous)

    def _refuse(self, exc: BundleRefused, source: str, data: bytes | None = None) -> None:
        self.metrics.refused(exc.reason)
        self.last_refusal = {"at": time.time(), "source": source, "reason": exc.reason,
                             "message": str(exc)}
        running = (f"bundle {self.bundle.version} keeps running" if self.bundle is not None
                   else "no bundle is applied")
        log.error("bundle from %s refused (%s): %s; %s", source, exc.reason, exc, running)
        self._tell(self.on_refused, exc, source, data)

    @staticmethod
    def _tell(listener: Callable[..., None] | None, *args: Any) -> None:
        if listener is None:
            return
        try:
            listener(*args)
        except Exception:  # an event is never worth a bundle
            log.exception("cannot log the bundle event")

    # -- pulling ------------------------------------------------------------

    def pull(self) -> str:
        """One conditional GET of the bundle URL; returns the pull's outcome."""
        url = self.config.url
        assert url is not None
        headers: dict[str, str] = {}
        if self._offered_etag:
            headers["If-None-Match"] = self._offered_etag
        try:
            basic = self.config.auth.apply(headers)
            if basic is not None:
                token = base64.b64encode(f"{basic[0]}:{basic[1]}".encode()).decode()
                headers["Authorization"] = f"Basic {token}"
            answer = self._http().get(url, headers)
        except FETCH_ERRORS as exc:
            return self._failed(f"{type(exc).__name__}: {exc}")
        if answer.status == 304:
            outcome = "refused" if self._offered_refused else "unchanged"
            if outcome == "refused":  # still the bundle refused before: counted once
                self.metrics.pulled(outcome)
                return outcome
        elif answer.status == 200:
            etag = answer.etag
            outcome = self.offer(answer.body, source=url, etag=etag)
            if outcome == "failed":
                return self._failed(self.last_error)
            self._offered_etag, self._offered_refused = etag, outcome == "refused"
        else:
            return self._failed(f"HTTP {answer.status} from {url}")
        self.metrics.pulled(outcome)
        if outcome != "refused":
            self.last_success = time.time()
            self.store.confirm(self.last_success)
            self.metrics.confirmed(self.last_success)
            self.last_error = ""
        return outcome

    def _failed(self, message: str) -> str:
        self.metrics.pulled("failed")
        self.last_error = message[:300]
        now = time.monotonic()
        if now - self._last_logged >= LOG_EVERY:
            self._last_logged = now
            log.warning("bundle pull failed: %s; the current configuration keeps running "
                        "(logged at most once a minute)", self.last_error)
        return "failed"

    def _http(self) -> BundleFetcher:
        if self._fetcher is None:
            self._fetcher = BundleFetcher(self.config.tls, self.config.timeout, MAX_BUNDLE_BYTES)
        return self._fetcher

    # -- imported by hand ---------------------------------------------------

    def take_incoming(self) -> list[str]:
        """Apply the bundles ``modelmon edge bundle import`` left, oldest first."""
        outcomes = []
        files = sorted(self.store.incoming.glob("*.tar.gz"), key=lambda p: p.stat().st_mtime)
        for path in files:
            if path.name in self._taken:
                continue
            try:
                data = path.read_bytes()
            except OSError:
                continue
            outcome = self.offer(data, source="import")
            if outcome == "failed":  # the signature could not be checked: next time
                continue
            if outcome == "applied":  # the next pull fetches the URL's bundle in full
                self._offered_etag, self._offered_refused = None, False
            outcomes.append(outcome)
            try:
                path.unlink(missing_ok=True)
            except OSError as exc:  # e.g. imported by another user: do not apply it again
                self._taken.add(path.name)
                log.error("cannot remove the imported bundle %s (%s); remove it by hand",
                          path, exc)
        return outcomes

    # -- the thread ---------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        poll = self.config.poll_interval
        next_pull = time.monotonic() + (random.uniform(0, min(poll, 10.0))
                                        if self.config.url else float("inf"))
        while not stop.is_set():
            try:
                self.take_incoming()
                if time.monotonic() >= next_pull:
                    self.pull()
                    next_pull = time.monotonic() + poll * random.uniform(0.9, 1.1)
            except Exception:  # a bug here must not end the agent's bundle thread
                log.exception("bundle handling failed; trying again")
                next_pull = time.monotonic() + poll
            stop.wait(min(INCOMING_EVERY, max(0.0, next_pull - time.monotonic())))

    def status(self) -> dict[str, Any]:
        current = self.current
        return {
            "url": self.config.url,
            "version": current.version if current else None,
            "sha256": current.sha256 if current else None,
            "source": current.source if current else None,
            "applied_at": current.applied_at if current else None,
            "models": dict(self.bundle.models) if self.bundle else {},
            "thresholds": self.bundle is not None and self.bundle.thresholds is not None,
            "profiles": sorted(self.bundle.profiles) if self.bundle else [],
            "collectors": (list(self.bundle.collectors) if self.bundle is not None
                           and self.bundle.collectors is not None else None),
            "last_success": self.last_success,
            "last_error": self.last_error,
            "last_refusal": self.last_refusal,
        }
