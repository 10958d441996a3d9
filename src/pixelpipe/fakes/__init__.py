"""Protocol-faithful fake Replicate, fal and OpenAI servers, for offline demos and tests.

Run them all with ``pixelpipe fake-providers`` (see :mod:`pixelpipe.fakes.server` for the
variables that point pixelpipe at them), or serve one in a test::

    from pixelpipe.fakes.replicate import FakeReplicate
    from pixelpipe.fakes.server import serve_app

    fake = FakeReplicate(token="r8_test")
    async with serve_app(fake.app) as base_url:
        ...  # ReplicateProvider("r8_test", base_url=base_url)

Each fake renders small deterministic images with Pillow, serves them at ``/files/...`` (they
expire like real provider URLs), sends real signed webhooks, and has ``POST /_control`` (switch
behaviours: latency, 429s, 5xx, hangs, content-policy and NSFW failures, lost / duplicate /
out-of-order webhooks, expired outputs; see :class:`pixelpipe.fakes.common.Behaviour`) and
``GET /_stats`` (creates per model, calls per operation, webhook counters).
"""
