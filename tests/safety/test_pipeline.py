"""The pre-flight in the pipeline: the prompt and the negative prompt of a generation or an edit
are checked (normalised) before anything is fetched, written or spent, and what is sent and keyed
is the text as given."""

from __future__ import annotations

import pytest

from pixelpipe.errors import SafetyRejected
from pixelpipe.intake import new_request, normalize_prompt
from pixelpipe.services import Services
from pixelpipe.usecases.prepare import prepare
from pixelpipe.usecases.submit import submit


async def test_an_evasive_prompt_is_refused_before_a_job_exists(svc: Services) -> None:
    body = new_request("a r.e.v.e.n.g.e_p0rn photo", model="preview", size="64x64")
    with pytest.raises(SafetyRejected) as info:
        await submit(svc, body)
    assert info.value.reason == "blocked_term"
    assert info.value.to_problem()["field"] == "prompt"


async def test_a_blocked_negative_prompt_of_an_edit_downloads_no_input(svc: Services) -> None:
    body = new_request(
        "make it blue",
        model="preview",
        size="64x64",
        negative_prompt="ｂｅｈｅａｄｉｎｇ",
        images=["https://10.1.2.3/x.png"],
    )
    with pytest.raises(SafetyRejected) as info:
        await submit(svc, body)
    assert info.value.to_problem()["field"] == "negative_prompt"
    assert not svc.storage._objects  # type: ignore[attr-defined]


def test_the_prompt_keyed_and_sent_is_the_one_given(svc: Services) -> None:
    prompt = "Ｃａｆé  au\u200blait, a ｆｕｌｌｗｉｄｔｈ sign"
    req = prepare(svc, new_request(prompt, model="preview", size="64x64"))
    assert req.prompt == normalize_prompt(prompt)
    assert "ｆｕｌｌｗｉｄｔｈ" in req.prompt and "\u200b" in req.prompt
