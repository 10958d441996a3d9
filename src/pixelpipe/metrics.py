"""Prometheus metrics, one registry per process (built in bootstrap, never at import)."""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

HEALTH_STATES = ("ready", "busy", "starting", "down", "unknown")  # providers.base.HealthState


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

        # self-hosted backends (issue 14): set by the engine's health checker every few seconds
        self.backend_state = Gauge(
            "pixelpipe_backend_health",
            "Self-hosted backend health: 1 for its current state, 0 for the others",
            ["backend", "state"],
            registry=r,
        )
        self.backend_busy = Gauge(
            "pixelpipe_backend_busy_slots",
            "Runs in flight on a self-hosted backend (from the jobs of every process)",
            ["backend"],
            registry=r,
        )
        self.backend_queue = Gauge(
            "pixelpipe_backend_queue_depth",
            "Jobs in line for a slot of a self-hosted backend (from the jobs of every process)",
            ["backend"],
            registry=r,
        )
        self.backend_gpu_seconds = Counter(
            "pixelpipe_backend_gpu_seconds",
            "GPU-seconds of a self-hosted backend's billed attempts",
            ["backend"],
            registry=r,
        )

    def set_backend_state(self, backend: str, state: str) -> None:
        for name in HEALTH_STATES:
            self.backend_state.labels(backend, name).set(1.0 if name == state else 0.0)

    def gpu_seconds_billed(self, backend: str, seconds: float) -> None:
        """A billed attempt's GPU-seconds (called where the attempt is recorded)."""
        self.backend_gpu_seconds.labels(backend).inc(max(0.0, seconds))

    def render(self) -> bytes:
        return generate_latest(self.registry)
