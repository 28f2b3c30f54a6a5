"""The container closes what it built, and leaves alone what it was handed."""

from __future__ import annotations

from pathlib import Path

import pytest

from config.settings import load_settings
from dunning.bootstrap import bootstrap
from dunning.errors import MailUnavailable
from dunning.mail.compose import compose
from dunning.mail.render import RenderedEmail
from dunning.mail.transport import MemoryTransport


def test_close_releases_what_the_container_built_and_only_that(tmp_path: Path) -> None:
    settings = load_settings(
        smtp={"host": "127.0.0.1", "port": 2525},
        database_url=f"sqlite:///{tmp_path}/dunning.sqlite3",
    )
    c = bootstrap(settings)
    built = c.transport
    c.close()
    message = compose(RenderedEmail("Hi", "t", "h"), mail_from="a@b.test", to="c@d.test", cc=[],
                      message_id="<m@b.test>")  # fmt: skip
    with pytest.raises(MailUnavailable, match="closed"):
        built.send(message)

    given = MemoryTransport()
    c = bootstrap(settings, transport=given)
    assert c.transport is given
    c.close()
    assert not given.closed
    c.close()  # twice is fine
