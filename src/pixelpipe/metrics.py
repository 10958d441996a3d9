"""Prometheus metrics, one registry per process (built in bootstrap, never at import)."""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest


@dataclass
class Metrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        self.submissions = Counter(
            "pixelpipe_provider_submissions", "Provider runs started", ["provider"], registry=r
        )
        self.provider_errors = Counter(
            "pixelpipe_provider_errors", "Provider errors by code", ["provider", "code"], registry=r
        )
        self.requests = Counter(
            "pixelpipe_generation_requests",
            "Generation requests by outcome",
            ["outcome"],
            registry=r,
        )
        # children resolved once: ``labels()`` takes a lock and a dict lookup per call
        outcomes = ("attached", "queued", "cache_hit")
        self.request_outcome = {outcome: self.requests.labels(outcome) for outcome in outcomes}
        self.finished = Counter(
            "pixelpipe_jobs_finished", "Jobs reaching a terminal state", ["status"], registry=r
        )
        self.step_seconds = Histogram(
            "pixelpipe_step_seconds", "Duration of worker steps", ["step"], registry=r
        )
        self.stored_bytes = Counter(
            "pixelpipe_stored_bytes", "Bytes written to storage", registry=r
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)
