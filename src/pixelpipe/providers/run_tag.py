"""Which job and attempt a provider run belongs to, carried in the webhook URL it is given.

A create call answers with the provider's run id; when that answer is lost (the process dies
while the call is in flight, the read times out) the run goes on at the provider, which bills it,
and nothing of ours names it. So every create that asks for a webhook gives the URL
``…/v1/webhooks/{provider}?run=<job id>.<attempt>.<tag>``: the run's completion then names its job
and attempt even if its id was never saved, and :mod:`pixelpipe.webhooks` adopts it (records its
cost once; stores its image if the job still needs one). ``tag`` is an HMAC of provider, job and
attempt under the server's signing key, so a caller cannot point a delivery at another job; the
delivery itself is still verified by the provider's own signature.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass
from urllib.parse import quote

RUN_PARAM = "run"
_DOMAIN = b"pixelpipe-provider-run-v1\x00"
_TAG_BYTES = 16


@dataclass(frozen=True, slots=True)
class RunRef:
    job_id: str
    attempt: int


def _tag(provider: str, job_id: str, attempt: int, secret: bytes) -> str:
    message = _DOMAIN + f"{provider}\x00{job_id}\x00{attempt}".encode()
    digest = hmac.new(secret, message, hashlib.sha256).digest()[:_TAG_BYTES]
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def run_webhook_url(base: str, provider: str, run: RunRef, secret: bytes) -> str:
    """The webhook URL for one attempt's run: ``base`` plus the signed ``run`` parameter."""
    tag = _tag(provider, run.job_id, run.attempt, secret)
    value = quote(f"{run.job_id}.{run.attempt}.{tag}", safe="")
    return f"{base}{'&' if '?' in base else '?'}{RUN_PARAM}={value}"


def parse_run(value: str | None, provider: str, secret: bytes) -> RunRef | None:
    """The job and attempt a delivery's ``run`` parameter names, or None (absent, malformed or
    not signed by us)."""
    if not value or len(value) > 200:
        return None
    job_id, _, rest = value.partition(".")
    attempt, _, tag = rest.partition(".")
    if not (job_id and attempt.isdigit() and tag):
        return None
    expected = _tag(provider, job_id, int(attempt), secret).encode("ascii")
    if not hmac.compare_digest(expected, tag.encode("utf-8", "replace")):
        return None
    return RunRef(job_id, int(attempt))
