"""Realistic provider payloads, stored as the JSON the providers send."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

PAYLOADS = Path(__file__).with_name("payloads")


def payload(name: str) -> Any:
    return json.loads((PAYLOADS / name).read_text())
