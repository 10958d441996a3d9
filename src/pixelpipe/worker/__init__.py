"""Stages 8–12 as short, idempotent steps over a leased job row.

``Worker.run_step`` looks at the job's status and does one thing: submit (queued/submitting),
poll (waiting), or fetch+store (fetching/storing). Each step ends with the row in a new state and,
if not terminal, a ``next_run_at``; a crash anywhere leaves a row that the next claim resumes.

By stage: :mod:`.submit`, :mod:`.poll`, :mod:`.output` (fetch, verify, store), :mod:`.billing`
(the ledger rows of ADR 0007); :mod:`.policy` decides retries and failover (pure) and
:mod:`.failures` applies its decisions; :mod:`.steps` holds the leased-step runner.
"""

from pixelpipe.worker.provider_run import cancel_run, provider_request
from pixelpipe.worker.steps import Worker

__all__ = ["Worker", "cancel_run", "provider_request"]
