"""The ``usage`` of a GPT image answer: OpenAI's token counts summed over the request's images."""

from __future__ import annotations

import time
from typing import Any

from pixelpipe.api.routes_openai import token_usage
from pixelpipe.intake import CanonicalRequest
from pixelpipe.jobs.ids import new_job_id
from pixelpipe.jobs.model import Job, JobStatus
from pixelpipe.key import content_key


def job(usage: dict[str, Any] | None, *, cached: bool = False) -> Job:
    req = CanonicalRequest(
        model="gpt-image-1", prompt="a poster", seed=0, width=1024, height=1024, format="png"
    )
    now = time.time()
    return Job(
        id=new_job_id(),
        status=JobStatus.SUCCEEDED,
        model="gpt-image-1",
        request=req,
        content_key=content_key(req),
        created_at=now,
        updated_at=now,
        deadline_at=now + 600,
        provider="openai",
        provider_state={} if usage is None else {"usage": usage},
        cached=cached,
    )


ONE = {
    "input_tokens": 50,
    "input_tokens_details": {"text_tokens": 10, "image_tokens": 40},
    "output_tokens": 272,
    "total_tokens": 322,
    "images": 1,  # what the provider adapter adds: not a token count
}


def test_counts_are_summed_over_the_images_and_split_by_input_kind() -> None:
    plain = {"input_tokens": 7, "output_tokens": 1056}  # no details: all text
    assert token_usage([job(ONE), job(plain)]) == {
        "input_tokens": 57,
        "input_tokens_details": {"text_tokens": 17, "image_tokens": 40},
        "output_tokens": 1328,
        "total_tokens": 1385,
    }


def test_a_cache_hit_ran_nothing_and_counts_zero() -> None:
    assert token_usage([job(None, cached=True)]) == {
        "input_tokens": 0,
        "input_tokens_details": {"text_tokens": 0, "image_tokens": 0},
        "output_tokens": 0,
        "total_tokens": 0,
    }
    both = token_usage([job(ONE), job(None, cached=True)])
    assert both is not None and both["total_tokens"] == 322


def test_no_usage_when_an_image_that_ran_reported_none() -> None:
    assert token_usage([job(ONE), job(None)]) is None
    assert token_usage([job({"input_tokens": "12", "output_tokens": 3})]) is None
