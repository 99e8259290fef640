"""The server's knobs, with defaults that explain themselves."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ServingConfig:
    """Limits and timings of one server process."""

    workers: int = 1
    """Server processes answering on one port (about the number of cores). Each loads the engines itself (the
    index arrays it memory-maps are shared through the page cache) and follows the store like a replica;
    ``/metrics`` and ``/admin/status`` describe the process that answered."""
    max_body_bytes: int = 10 * 1024 * 1024
    """Request bodies above this are refused with 413, from Content-Length before reading and while streaming."""
    max_batch: int = 10_000
    """Most records (events, products or deletes) in one write request."""
    max_in_flight: int = 32
    """Requests admitted at once; past this the server answers 503 with Retry-After (``/health`` is exempt)."""
    retry_after_seconds: int = 1
    """What the Retry-After header of an overload or not-ready answer says."""
    engine_concurrency: int = 2
    """Engine calls running at once (about the number of cores); more wait their turn. Keeps many request
    threads from oversubscribing the CPU with each engine's own threads."""
    engine_queue_ms: float = 100.0
    """An engine call that cannot start within this many milliseconds is answered 503 with Retry-After, so
    under overload the requests that are served keep their latency instead of all waiting longer; 0 waits
    as long as it takes."""
    engine_threads: int = 1
    """Threads one engine call may use (PyTorch, FAISS), set once the engines are loaded; 0 leaves them alone."""
    facet_candidates: int = 10_000
    """Facet counts are taken over the query's matching set, its first this many products when it is larger
    (the cascade lists at most ``shoprank.cascade.MATCH_LIMIT``)."""
    watch_seconds: float = 5.0
    """How often the server looks for newly published bundles; 0 turns watching (and following the store) off."""
    sync_seconds: float = 1.0
    """How often the server follows the store's change feed (products, rules and settings written by another
    process or replica); what a replica serves is at most about this much behind. Used while watching is on."""
    preload: bool = True
    """Load every shop's engines at start-up; ``/health`` says ready only once that is done."""
    baseline: bool = True
    """A shop with products but no bundle of a kind serves the untrained baseline stack (shoprank.baseline)
    instead of answering 409."""
    baseline_embeddings: bool = True
    """Embed a baseline shop's catalogue with the base encoder in the background, then serve hybrid search;
    off: lexical until a trained bundle arrives (``shoprank demo`` while it trains)."""
    impression_queue: int = 10_000
    """Impressions waiting to be written, at most; past this an answer's impression is dropped (counted in
    /metrics as ``impressions_dropped``), never the answer. A kill -9 loses at most these plus one batch."""
    impression_batch: int = 500
    """Impressions written per store transaction."""
    impression_flush_ms: float = 200.0
    """How long a partial batch waits before it is written."""
    impression_retention_days: float = 90.0
    """Impressions older than this are deleted (at start and hourly); 0 keeps them forever."""

    def __post_init__(self) -> None:
        for name in ("workers", "max_body_bytes", "max_batch", "max_in_flight", "facet_candidates",
                     "engine_concurrency"):
            if getattr(self, name) < 1:
                raise ValueError(f"ServingConfig.{name} must be at least 1, got {getattr(self, name)}")
        if self.engine_threads < 0:
            raise ValueError("ServingConfig.engine_threads must be 0 (leave alone) or more")
        if self.engine_queue_ms < 0:
            raise ValueError("ServingConfig.engine_queue_ms must be 0 (wait as long as it takes) or more")
        for name in ("impression_queue", "impression_batch"):
            if getattr(self, name) < 1:
                raise ValueError(f"ServingConfig.{name} must be at least 1, got {getattr(self, name)}")
        if self.impression_flush_ms < 0 or self.impression_retention_days < 0:
            raise ValueError("ServingConfig.impression_flush_ms and impression_retention_days must be 0 or more")
        if self.watch_seconds < 0:
            raise ValueError("ServingConfig.watch_seconds must be 0 (off) or more")
        if self.sync_seconds <= 0:
            raise ValueError("ServingConfig.sync_seconds must be more than 0 (watch_seconds=0 turns it off)")
