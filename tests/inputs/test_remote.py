"""An input given by URL goes through the fetch guard: a private address is refused, clearly."""

from __future__ import annotations

import pytest

from pixelpipe.errors import InputRejected
from pixelpipe.fetch import FetchPolicy, new_fetch_client
from pixelpipe.inputs import InputLimits, fetch_input
from pixelpipe.storage import MemoryStorage


@pytest.mark.parametrize(
    "url",
    [
        "https://10.0.0.7/cat.png",
        "https://169.254.169.254/latest/meta-data",
        "http://127.0.0.1:9/cat.png",
        "https://user:pw@example.com/cat.png",
        "file:///etc/passwd",
    ],
)
async def test_a_url_the_guard_refuses_is_an_input_error_and_nothing_is_stored(url: str) -> None:
    storage = MemoryStorage()
    policy = FetchPolicy()  # production: https, public addresses only
    async with new_fetch_client(policy) as client:
        with pytest.raises(InputRejected) as err:
            await fetch_input(url, storage, InputLimits(), policy=policy, client=client)
    assert "refused" in err.value.detail and "POST /v1/uploads" in err.value.detail
    assert err.value.status == 422 and err.value.extra["field"] == "images"
    assert "pw" not in err.value.detail
    assert not storage._objects
