"""The Stripe double with an account to read: customers, payment methods, subscriptions and
invoices, listed the way Stripe lists them and retrievable one by one.

Lists are newest first (by ``created``, then id), ``limit`` at most 100, paged with
``starting_after`` and ``has_more``; an unknown ``starting_after`` is Stripe's 404. The
expansions the sync asks for (``data.invoice_settings.default_payment_method`` on customers,
``data.default_payment_method`` on subscriptions) are honoured; subscriptions filter by
``status`` (``all`` by default on the sync's request; Stripe's own default hides cancelled
ones), invoices by ``status`` and ``customer``. ``list_delay_s`` slows every list answer, so a
test can stop a sync half-way.
"""

from __future__ import annotations

import copy
import itertools
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from tests.stripe_double import JSON, Reply, StripeDouble, _error

T0 = 1_767_225_600  # 2026-01-01T00:00:00Z: when the account's objects are created

_LISTS = {
    "/v1/customers": "customers",
    "/v1/payment_methods": "payment_methods",
    "/v1/subscriptions": "subscriptions",
    "/v1/invoices": "invoices",
}


@dataclass
class StripeAccountDouble(StripeDouble):
    customers: dict[str, JSON] = field(default_factory=dict)
    payment_methods: dict[str, JSON] = field(default_factory=dict)
    subscriptions: dict[str, JSON] = field(default_factory=dict)
    list_delay_s: float = 0.0
    _clock: Iterator[int] = field(default_factory=lambda: itertools.count(T0, 60))

    # -- the account -------------------------------------------------------------------------
    def add_customer(self, cus_id: str, *, email: str | None, **extra: Any) -> JSON:
        obj: JSON = {
            "id": cus_id, "object": "customer", "created": next(self._clock), "email": email,
            "name": extra.pop("name", None),
            "preferred_locales": extra.pop("preferred_locales", []),
            "address": extra.pop("address", None), "metadata": extra.pop("metadata", {}),
            "invoice_settings": {"default_payment_method": None}, "deleted": None,
        }  # fmt: skip
        obj.update(extra)
        self.customers[cus_id] = obj
        return obj

    def add_card(self, pm_id: str, customer: str, *, brand: str = "visa", last4: str = "4242",
                 exp: tuple[int, int] = (12, 2030), default: bool = True) -> JSON:  # fmt: skip
        obj: JSON = {
            "id": pm_id, "object": "payment_method", "type": "card", "customer": customer,
            "created": next(self._clock),
            "card": {"brand": brand, "last4": last4, "exp_month": exp[0], "exp_year": exp[1],
                     "fingerprint": f"fp_{pm_id}", "funding": "credit"},
        }  # fmt: skip
        self.payment_methods[pm_id] = obj
        self.behaviours.setdefault(pm_id, self.behaviours["pm_card_visa"])
        if default:
            self.customers[customer]["invoice_settings"]["default_payment_method"] = pm_id
        return obj

    def add_subscription(self, sub_id: str, customer: str, *, price: str, amount: int,
                         currency: str = "eur", interval: str = "month", status: str = "active",
                         quantity: int = 1, payment_method: str | None = None) -> JSON:  # fmt: skip
        created = next(self._clock)
        item = {
            "id": f"si_{sub_id}", "object": "subscription_item", "quantity": quantity,
            "current_period_end": created + 30 * 86400,
            "price": {"id": price, "object": "price", "currency": currency,
                      "unit_amount": amount, "product": f"prod_{price}",
                      "recurring": {"interval": interval, "interval_count": 1}},
        }  # fmt: skip
        obj: JSON = {
            "id": sub_id, "object": "subscription", "customer": customer, "created": created,
            "status": status, "default_payment_method": payment_method, "currency": currency,
            "items": {"object": "list", "data": [item], "has_more": False},
        }  # fmt: skip
        self.subscriptions[sub_id] = obj
        return obj

    def add_open_invoice(
        self, in_id: str, sub_id: str, *, attempts: int = 1, finalized_at: int | None = None
    ) -> JSON:
        sub = self.subscriptions[sub_id]
        item = sub["items"]["data"][0]
        amount = item["price"]["unit_amount"] * item["quantity"]
        self.add_invoice(in_id, customer=sub["customer"], amount=amount, currency=sub["currency"])
        created = next(self._clock)
        self.invoices[in_id].update(
            created=created, attempt_count=attempts, amount_remaining=amount,
            parent={"type": "subscription_details",
                    "subscription_details": {"subscription": sub_id}},
            status_transitions={"finalized_at": finalized_at or created},
        )  # fmt: skip
        return self.invoices[in_id]

    # -- the API -------------------------------------------------------------------------------
    def _route(self, method: str, path: str, params: dict[str, str]) -> Reply:
        if method == "GET" and path in _LISTS:
            if self.list_delay_s:
                time.sleep(self.list_delay_s)
            return self._list(_LISTS[path], params)
        parts = path.strip("/").split("/")
        if method == "GET" and len(parts) == 3 and f"/v1/{parts[1]}" in _LISTS:
            store: dict[str, JSON] = getattr(self, _LISTS[f"/v1/{parts[1]}"])
            if parts[2] in store:
                return Reply(200, self._expanded(parts[1], store[parts[2]], params))
            return Reply(404, _error("invalid_request_error", "resource_missing",
                                     f"No such object: '{parts[2]}'"))  # fmt: skip
        return super()._route(method, path, params)

    def _list(self, kind: str, params: dict[str, str]) -> Reply:
        store: dict[str, JSON] = getattr(self, kind)
        items = sorted(store.values(), key=lambda o: (o.get("created", 0), o["id"]), reverse=True)
        items = [o for o in items if _matches(kind, o, params)]
        after = params.get("starting_after")
        if after:
            ids = [o["id"] for o in items]
            if after not in ids:
                return Reply(400, _error("invalid_request_error", "resource_missing",
                                         f"No such object: '{after}'"))  # fmt: skip
            items = items[ids.index(after) + 1 :]
        limit = int(params.get("limit", "10"))
        if not 1 <= limit <= 100:
            return Reply(400, _error("invalid_request_error", "parameter_invalid", "bad limit"))
        page = [self._expanded(kind, o, params) for o in items[:limit]]
        return Reply(200, {"object": "list", "data": page, "has_more": len(items) > limit,
                           "url": f"/v1/{kind}"})  # fmt: skip

    def _expanded(self, kind: str, obj: JSON, params: dict[str, str]) -> JSON:
        out = copy.deepcopy(obj)
        wanted = {v.removeprefix("data.") for k, v in params.items() if k.startswith("expand")}
        if kind == "customers" and "invoice_settings.default_payment_method" in wanted:
            ref = out["invoice_settings"]["default_payment_method"]
            if ref in self.payment_methods:
                out["invoice_settings"]["default_payment_method"] = copy.deepcopy(
                    self.payment_methods[ref]
                )
        if kind == "subscriptions" and "default_payment_method" in wanted:
            ref = out.get("default_payment_method")
            if ref in self.payment_methods:
                out["default_payment_method"] = copy.deepcopy(self.payment_methods[ref])
        return out

    def list_calls(self, path: str) -> list[dict[str, str]]:
        return [s.query for s in self.seen if s.method == "GET" and s.path == path]


def _matches(kind: str, obj: JSON, params: dict[str, str]) -> bool:
    status = params.get("status")
    if kind == "subscriptions":
        if status in (None, ""):
            return obj["status"] not in ("canceled", "incomplete_expired")
        return status == "all" or obj["status"] == status
    if kind == "invoices" and status and obj.get("status") != status:
        return False
    customer = params.get("customer")
    return not (customer and obj.get("customer") != customer)
