"""Moderation of prompts and output images (docs/moderation.md): the boundary in :mod:`.base`,
an in-memory moderator and log in :mod:`.memory`, OpenAI's moderation API in :mod:`.openai`, the
log on SQL in :mod:`.sql`, the per-key policy in :mod:`.policy`."""
