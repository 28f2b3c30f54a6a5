"""``dunning preview-email``."""

from __future__ import annotations

import pytest

from dunning.cli.main import main


def test_preview_prints_subject_and_text_with_configured_brand(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DUNNING_BRAND__NAME", "Nordlys Media")
    monkeypatch.setenv("DUNNING_PUBLIC_BASE_URL", "https://pay.nordlys.test/")
    code = main(
        ["preview-email", "subscription_suspended", "--locale", "da_DK", "--format", "text"]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert out.startswith("Subject: Dit abonnement på Pro er suspenderet\n")
    assert "Genaktivér mit abonnement:\nhttps://pay.nordlys.test/update/SAMPLE-TOKEN" in out
    assert "Nordlys Media" in out
    assert "<html" not in out


def test_preview_html_only(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["preview-email", "card_expiring", "--format", "html"]) == 0
    out = capsys.readouterr().out
    assert "<!DOCTYPE html>" in out
    assert "Please update your card" in out
    assert "\nHi Ana Jensen,\n" not in out  # no text part


def test_preview_unknown_kind_exits_2_naming_the_kinds(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["preview-email", "payment_faild"]) == 2
    err = capsys.readouterr().err
    assert "payment_faild" in err
    assert "payment_failed" in err
    assert "card_expiring" in err


def test_preview_unknown_format_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["preview-email", "payment_failed", "--format", "pdf"]) == 2
    assert "text, html or both" in capsys.readouterr().err
