"""The card-update page's views: an account and a language in, an HTML response out."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from starlette.responses import HTMLResponse, Response

from dunning.bootstrap import Container
from dunning.gateways.base import CardToken
from dunning.mail.formatting import card_view, zone
from dunning.services.notify import plan_name
from dunning.web import csrf
from dunning.web.account import Account, LinkGone
from dunning.web.card_form import Entered
from dunning.web.i18n import Lang
from dunning.web.render import page

OUTCOMES = frozenset(
    {
        "paid",
        "saved",
        "charge_declined",
        "pending",
        "reactivated",
        "reactivate_declined",
        "nothing_due",
    }
)
COOKIE_MAX_AGE_S = 3600


class View:
    def __init__(self, c: Container) -> None:
        self.c = c
        self.settings = c.settings

    @property
    def stripe(self) -> bool:
        return self.settings.gateway == "stripe"

    def _stripe_js(self) -> dict[str, Any]:
        """What a page that loads Stripe.js needs: the script's URL and the publishable key."""
        return {
            "js_url": self.settings.stripe.js_url,
            "publishable_key": self.settings.stripe.publishable_key or "",
        }

    def _common(self, lang: Lang) -> dict[str, Any]:
        return {
            "lang": lang.code,
            "t": lang.t,
            "brand": self.settings.brand.name,
            "support_email": self.settings.brand.support_email,
        }

    def _account(self, account: Account, lang: Lang) -> dict[str, Any]:
        t, sub = lang.t, account.subscription
        view = card_view(dict(account.card) if account.card else None)
        card_line = (
            t["card_line"].format(brand=view.brand, last4=view.last4, expiry=view.expiry)
            if view
            else None
        )
        due = lang.amounts(account.due)
        if account.owes:
            key = "next_due_suspended" if account.suspended else "next_due"
            next_text = t[key].format(amount=due)
        elif sub["current_period_end"] is not None:
            day = sub["current_period_end"].astimezone(zone(account.customer["timezone"])).date()
            next_text = t["next_later"].format(date=lang.day(day))
        else:
            next_text = t["next_later_nodate"]
        return {
            "name": account.customer["name"] or account.customer["email"],
            "title": t["title_reactivate"] if account.suspended else t["title"],
            "plan": plan_name(self.c, sub["plan"]),
            "status_label": t.get("status_" + str(sub["status"]), str(sub["status"])),
            "due": due or t["nothing_due"],
            "card_line": card_line,
            "next_text": next_text,
            "suspended": account.suspended,
            # A charge follows the new card: the button names it, and no note says otherwise.
            "submit_text": t["submit_pay"].format(amount=due) if account.owes else t["submit"],
            "charge_note": t["charge_note"].format(amount=due) if account.owes else None,
        }

    def form(
        self,
        account: Account,
        token: str,
        csrf_value: str,
        *,
        error: str | None = None,
        fields: Mapping[str, str] | None = None,
        entered: Entered | None = None,
        status: int = 200,
    ) -> HTMLResponse:
        """The page with the form; ``error`` is a message key shown above it, ``fields`` the
        message key of each wrong input (shown beside it), ``entered`` what to fill in again."""
        lang = Lang(account.locale)
        errors = {name: lang.t[key] for name, key in (fields or {}).items()}
        return page(
            "update.html",
            status,
            stripe=self.stripe,
            **self._common(lang),
            **self._account(account, lang),
            token=token,
            csrf_field=csrf.FIELD,
            csrf_value=csrf_value,
            error=lang.t[error] if error else None,
            errors=errors,
            entered=entered or Entered(),
            **self._stripe_js(),
        )

    def challenge(
        self,
        account: Account,
        token: str,
        csrf_value: str,
        card: CardToken,
        sealed: str,
        client_secret: str = "",
    ) -> HTMLResponse:
        """The 3-D Secure step: confirm (or cancel) the card with the bank; on Stripe,
        Stripe.js runs it on the SetupIntent whose ``client_secret`` the page carries."""
        lang = Lang(account.locale)
        view = card_view(
            {
                "network": card.network,
                "last4": card.last4,
                "exp_month": card.exp_month,
                "exp_year": card.exp_year,
            }
        )
        assert view is not None
        described = lang.t["card_line"].format(
            brand=view.brand, last4=view.last4, expiry=view.expiry
        )
        return page(
            "challenge.html",
            200,
            stripe=self.stripe,
            **self._common(lang),
            token=token,
            csrf_field=csrf.FIELD,
            csrf_value=csrf_value,
            card_text=described,
            sealed=sealed,
            client_secret=client_secret,
            **self._stripe_js(),
        )

    def done(
        self, account: Account, token: str, outcome: str, paid: tuple[tuple[int, str], ...] = ()
    ) -> HTMLResponse:
        """The result page; ``paid``: what the charge collected, when the server signed it."""
        lang = Lang(account.locale)
        outcome = outcome if outcome in OUTCOMES else "pending"
        charged = lang.t["done_charged"].format(amount=lang.amounts(paid)) if paid else None
        return page(
            "done.html",
            200,
            **self._common(lang),
            **self._account(account, lang),
            token=token,
            outcome=outcome,
            message=lang.t["done_" + outcome],
            charged=charged,
            back=outcome == "reactivate_declined",
        )

    def gone(self, exc: LinkGone) -> HTMLResponse:
        lang = Lang(exc.locale)
        return page(
            "message.html",
            410,
            **self._common(lang),
            title=lang.t["gone_title"],
            message=lang.t["gone_" + exc.reason],
        )

    def message(self, account: Account, title: str, message: str, status: int) -> HTMLResponse:
        lang = Lang(account.locale)
        return page(
            "message.html",
            status,
            **self._common(lang),
            title=lang.t[title],
            message=lang.t[message],
        )

    def set_csrf_cookie(self, response: Response, token: str, value: str) -> None:
        """The cookie half of the double submit, scoped to this link's pages."""
        response.set_cookie(
            csrf.COOKIE,
            value,
            max_age=COOKIE_MAX_AGE_S,
            path=f"/update/{token}",
            secure=self.settings.public_base_url.startswith("https://"),
            httponly=True,
            samesite="strict",
        )
