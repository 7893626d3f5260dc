"""A guarded tool for the ``threadline chat --tools`` approval tests (imported by the chat)."""

from __future__ import annotations

import os
from pathlib import Path

from threadline import tool


@tool(approval_mode="always_require")
def send_email(to: str, body: str) -> str:
    """Send an email to an address.

    Args:
        to: the address.
        body: the text of the email.
    """
    Path(os.environ["TL_TEST_SENT_FILE"]).write_text(f"{to}\n{body}")
    return f"sent to {to}"
