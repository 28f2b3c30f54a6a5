"""What is already stored decides a few things about a chunk (pure functions).

A card or subscription id that belongs to another customer refuses the line; a stored
subscription does not move onto a card the pipeline has removed or purged; a new default card
first clears the stored one; an explicit subscription status is applied to stored
subscriptions where the lifecycle allows.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from dunning.imports.checks import LineError
from dunning.imports.lines import CustomerLine


@dataclass(frozen=True)
class Existing:
    """The rows of a chunk that are already stored, keyed by id."""

    customers: frozenset[str] = frozenset()
    cards: dict[str, tuple[str, str]] = field(default_factory=dict)  # (customer, status)
    subscriptions: dict[str, tuple[str, str | None]] = field(default_factory=dict)  # (cus, card)
    invoices: dict[str, str] = field(default_factory=dict)  # customer
    default_cards: dict[str, str] = field(default_factory=dict)  # customer -> its default card


def ownership_errors(lineno: int, c: CustomerLine, existing: Existing) -> list[LineError]:
    """Ids this line names that are stored under another customer."""
    if not (existing.cards or existing.subscriptions or existing.invoices):
        return []
    taken = "already belongs to another customer"
    errors = []
    for i, pm in enumerate(c.payment_methods):
        if pm.id in existing.cards and existing.cards[pm.id][0] != c.id:
            errors.append(LineError(lineno, f"payment_methods.{i}.id", taken))
    for i, sub in enumerate(c.subscriptions):
        if sub.id in existing.subscriptions and existing.subscriptions[sub.id][0] != c.id:
            errors.append(LineError(lineno, f"subscriptions.{i}.id", taken))
    for i, inv in enumerate(c.invoices):
        if inv.id in existing.invoices and existing.invoices[inv.id] != c.id:
            errors.append(LineError(lineno, f"invoices.{i}.id", taken))
    return errors


def keeps_card(card: str | None, existing: Existing) -> bool:
    """A stored subscription keeps its card rather than move to one the pipeline removed."""
    return card in existing.cards and existing.cards[card][1] != "active"


def needs_state(lines: list[CustomerLine], existing: Existing) -> bool:
    """Whether rows built without ``existing`` would be wrong for these lines."""
    if not existing.subscriptions:
        return False
    return any(
        s.id in existing.subscriptions and keeps_card(s.payment_method or default_card(c), existing)
        for c in lines
        for s in c.subscriptions
    )


@dataclass
class StateChanges:
    """Writes that depend on what is stored, beyond the upserts."""

    # Stored default cards to unset first: another card of the customer becomes the default.
    old_defaults: list[str] = field(default_factory=list)
    explicit_status: dict[str, str] = field(default_factory=dict)  # stored sub -> status


def state_changes(lines: list[CustomerLine], existing: Existing) -> StateChanges:
    """The default-card flips and explicit subscription statuses these lines ask for."""
    out = StateChanges()
    if not existing.default_cards and not existing.subscriptions:
        return out
    for c in lines:
        default = default_card(c)
        stored_default = existing.default_cards.get(c.id)
        if (
            default is not None
            and stored_default not in (None, default)
            and existing.cards.get(default, (c.id, "active"))[1] == "active"
        ):
            out.old_defaults.append(stored_default)
        in_dunning = {inv.subscription for inv in c.invoices}
        for sub in c.subscriptions:
            # An imported open invoice makes an active subscription past_due; that is done
            # after the invoice is written, so a re-import does not undo a recovery.
            if (
                sub.id in existing.subscriptions
                and sub.status
                and not (sub.status == "active" and sub.id in in_dunning)
            ):
                out.explicit_status[sub.id] = sub.status
    return out


def default_card(c: CustomerLine) -> str | None:
    """The id of the card this line makes the default, if any."""
    for pm in c.payment_methods:  # a loop, not next(genexpr): this runs for every line
        if pm.default:
            return pm.id
    return None
