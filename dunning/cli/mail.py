"""``dunning preview-email KIND``: render an email from sample data, as a customer would get it."""

from __future__ import annotations

from enum import StrEnum
from typing import NoReturn

import typer

from dunning.cli.common import EXIT_USAGE, Exit, container, err_console
from dunning.links import update_url
from dunning.mail.formatting import choose_locale
from dunning.mail.locales import parse_locale
from dunning.mail.render import EMAIL_KINDS, LOCALES, Look, UnknownEmailKind, render_email
from dunning.mail.samples import sample_context


class PreviewFormat(StrEnum):
    text = "text"
    html = "html"
    both = "both"


def _usage(message: str) -> NoReturn:
    err_console.print(f"[bold red]error[/]: {message}", highlight=False, soft_wrap=True)
    raise Exit(EXIT_USAGE)


def _check_locale(locale: str) -> None:
    """Refuse a tag Babel does not know; warn when customers of that locale get English."""
    parsed = parse_locale(locale)
    if parsed is None:
        _usage(f"unknown locale {locale!r}; use a tag such as {', '.join(LOCALES)} or da_DK")
    if parsed is None or choose_locale(locale, LOCALES)[0] != parsed.language:
        err_console.print(
            f"warning: no {locale} templates; customers with this locale get English "
            f"(templates: {', '.join(LOCALES)})",
            markup=False,
            soft_wrap=True,
        )


def register(app: typer.Typer) -> None:
    @app.command("preview-email")
    def preview_email(
        kind: str = typer.Argument(..., help="Email kind: " + ", ".join(EMAIL_KINDS)),
        locale: str = typer.Option("en", "--locale", "-l", help="Customer locale, e.g. da_DK"),
        fmt: str = typer.Option("both", "--format", "-f", help="text, html or both"),
    ) -> None:
        """Render KIND with sample data and the configured brand; print subject and body."""
        try:
            context = sample_context(kind)
            part = PreviewFormat(fmt)
        except UnknownEmailKind as exc:
            _usage(str(exc))
        except ValueError:
            _usage(f"unknown format {fmt!r}; use text, html or both")
        _check_locale(locale)
        settings = container().settings
        if context["update_url"] is not None:
            context["update_url"] = update_url(settings.public_base_url, "SAMPLE-TOKEN")
        rendered = render_email(
            kind,
            locale,
            context,
            brand_name=settings.brand.name,
            support_email=settings.brand.support_email,
            look=Look(
                settings.brand.logo_url, settings.brand.accent_color, settings.brand.email_templates
            ),
        )
        # plain echo: rich would read [..] in a customer's text as markup
        if part is not PreviewFormat.html:  # HTML alone is a page to save or open as it is
            typer.echo(f"Subject: {rendered.subject}\n")
        if part in (PreviewFormat.text, PreviewFormat.both):
            typer.echo(rendered.text)
        if part in (PreviewFormat.html, PreviewFormat.both):
            typer.echo(rendered.html)
