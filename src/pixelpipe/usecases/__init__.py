"""The use cases every adapter calls (API routes, web page, CLI, ``Pipeline``, OpenAI endpoint).

One module per use case; the adapters only translate their input and output:

* :mod:`.prepare` — stages 1–2 (intake, safety) shared by submit and estimate
* :mod:`.submit` — stages 1–7 of one generation (cache, budget, single-flight, job, queue)
* :mod:`.estimate` — what a generation would cost, nothing spent
* :mod:`.jobs` — get, list, cancel, delete a job; its events
* :mod:`.batch` — submit many and wait for them (OpenAI endpoint, ``pixelpipe batch``, ``Pipeline``)
* :mod:`.images` — a finished job's image: bytes, URL, the stored object for the image routes
* :mod:`.usage` — spend per key/model/day and the storage cost of what is kept
* :mod:`.worker_lifecycle` — the worker's lifecycle (dispatcher, sweeper, webhook deliveries)

Use cases import the engine and the boundaries, never an adapter or :mod:`pixelpipe.bootstrap`.
"""
