"""Connection URLs as they may be shown: passwords masked, in the user part and in the query.

``postgresql://app:s3cret@db/book?sslpassword=x`` and ``redis://h:6379/0?password=x`` both
carry secrets; :func:`masked` shows them as ``***`` and :func:`scrubbed` removes them from any
text (a driver's error message may quote the URL).
"""

from __future__ import annotations

import re
from urllib.parse import unquote, urlsplit

MASK = "***"
MIN_SCRUBBED = 3
# Query parameters whose values are secrets (psycopg's password and sslpassword, redis-py's
# password, tokens and keys of other drivers).
SECRET_PARAM = re.compile(r"pass|pwd|secret|token|key|auth|credential", re.IGNORECASE)


def secrets_of(url: str) -> list[str]:
    """The secret parts of ``url``: the password and the values of secret query parameters,
    as written and decoded."""
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return []
    found = [password, unquote(password)] if password else []
    for match in re.finditer(r"(?:^|&)([^=&]+)=([^&]*)", parts.query):
        if SECRET_PARAM.search(unquote(match.group(1))):
            found += [match.group(2), unquote(match.group(2))]
    # Scrubbing a one- or two-character "secret" would mangle the text and hide nothing.
    return sorted({s for s in found if len(s) >= MIN_SCRUBBED}, key=len, reverse=True)


def scrubbed(text: str, *urls: str) -> str:
    """``text`` with each of ``urls`` masked and every secret of theirs replaced by ``***``."""
    for url in urls:
        text = text.replace(url, masked(url))
        for secret in secrets_of(url):
            text = text.replace(secret, MASK)
    return text


def masked(url: str) -> str:
    """``url`` with its password and secret query values shown as ``***``."""
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return "<unparsable URL>"
    query = re.sub(
        r"(^|&)([^=&]+)=([^&]*)",
        lambda m: m.group(1) + m.group(2) + "=" + _value(m.group(2), m.group(3)),
        parts.query,
    )
    if not password and query == parts.query:
        return url
    if password:
        userinfo, _, host = parts.netloc.rpartition("@")
        parts = parts._replace(netloc=f"{userinfo.partition(':')[0]}:{MASK}@{host}")
    return parts._replace(query=query).geturl()


def _value(name: str, value: str) -> str:
    return MASK if SECRET_PARAM.search(unquote(name)) else value
