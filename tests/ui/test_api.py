"""The UI's JSON API on bad input: clear errors, the same 404 for missing and foreign ids.

No browser here: raw HTTP against the served app (the pages' own calls are in test_pages.py).
"""

from __future__ import annotations

import pytest

from tests.hosting._raw_http import request
from tests.ui.conftest import Served


@pytest.mark.parametrize(
    ("method", "path", "status", "says"),
    [
        ("GET", "/ui/api/threads", 401, "API key"),
        ("GET", "/ui/api/threads/x?offset=-1", 400, "offset"),
        ("GET", "/ui/api/threads/x?offset=abc", 400, "offset"),
        ("GET", "/ui/api/threads/x?limit=0", 400, "limit"),
        ("GET", "/ui/api/threads/x?limit=5000", 400, "limit"),
        ("POST", "/ui/api/threads/x/fork", 400, "at=N"),
        ("POST", "/ui/api/threads/x/fork?at=two", 400, "at=N"),
        ("GET", "/ui/api/memories", 400, "user"),
        ("DELETE", "/ui/api/memories?user=%20", 400, "user"),
        ("GET", "/ui/api/nothing-here", 404, "Unknown endpoint"),
        ("GET", "/ui/api/threads/conv_missing", 404, "conv_missing"),
    ],
)
async def test_bad_requests_say_what_is_wrong(
    served: Served, method: str, path: str, status: int, says: str
) -> None:
    key = "not-a-key" if status == 401 else "key-alice"
    answer = await request(served.origin, method, path, key=key)
    assert answer.status == status, answer.text
    assert says in answer.json()["error"]["message"]


async def test_pages_are_the_packaged_page_with_a_strict_policy(served: Served) -> None:
    for path in ("/ui/", "/ui/threads/anything", "/ui/memories"):
        answer = await request(served.origin, "GET", path)
        assert answer.status == 200
        assert '<script src="/ui/static/ui.js"' in answer.text
        policy = answer.headers["content-security-policy"]
        assert "script-src 'self'" in policy and "default-src 'none'" in policy
    script = await request(served.origin, "GET", "/ui/static/ui.js")
    assert script.status == 200 and "textContent" in script.text
    assert (await request(served.origin, "GET", "/ui/static/nope.js")).status == 404
