"""The card-update page's words in English and Danish, and locale-aware formatting.

Placeholders are filled with ``str.format`` in the templates; the result is escaped there like
any other value.
"""

from __future__ import annotations

from datetime import date

from babel.dates import format_date

from dunning.mail.formatting import choose_locale, money

LOCALES = ("en", "da")

EN: dict[str, str] = {
    "title": "Update your card",
    "greeting": "Hello {name},",
    "intro": "Here you can give us a new card for your subscription.",
    "plan": "Plan",
    "status": "Subscription",
    "amount_due": "Amount due",
    "nothing_due": "Nothing is due",
    "current_card": "Current card",
    "no_card": "No card on file",
    "card_line": "{brand} ending in {last4}, expires {expiry}",
    "status_active": "Active",
    "status_past_due": "Payment overdue",
    "status_suspended": "Suspended",
    "status_cancelled": "Cancelled",
    "next_due": "When you update your card, we charge the amount due, {amount}, to the new "
    "card at once, and your subscription carries on.",
    "next_due_suspended": "When you update your card, we charge the amount due, {amount}, to "
    "the new card at once, and your subscription is reactivated.",
    "next_later": "Nothing is charged now. Your new card will be used from your next billing "
    "date, {date}.",
    "next_later_nodate": "Nothing is charged now. Your new card will be used from your next "
    "billing date.",
    "verify_note": "We check the new card with a verification authorization. It is not a "
    "charge, and it disappears from your statement.",
    "secure_note": "Your card number goes straight to our payment provider. We keep only the "
    "brand, the last four digits and the expiry date.",
    "new_card": "New card",
    "card_number": "Card number",
    "exp_month": "Expiry month",
    "exp_year": "Expiry year",
    "cvc": "CVC",
    "remove_old": "Remove my previous card",
    "submit": "Update card",
    "reactivate_title": "Reactivate with your current card",
    "reactivate_intro": "Your subscription is suspended. You can pay the amount due with your "
    "current card and restore it at once, or give us a new card above.",
    "reactivate": "Reactivate my subscription",
    "support": "Questions? Write to {email}.",
    "err_number": "That card number is not valid. Check it and try again.",
    "err_expiry": "Check the expiry month and year.",
    "err_expired": "That card has expired. Use a card that is still valid.",
    "err_cvc": "The CVC is the 3 or 4 digits on the card. Check it and try again.",
    "err_declined": "Your bank declined this card. Try another card or contact your bank.",
    "err_incorrect_cvc": "Your bank says the CVC is not right. Check it and try again.",
    "err_expired_card": "Your bank says this card has expired. Use another card.",
    "err_auth_failed": "The card was not confirmed with your bank, so nothing was changed. "
    "Try again or use another card.",
    "err_no_card": "There is no card on file to charge. Add a new card above.",
    "err_unavailable": "We could not reach the payment provider. Nothing was changed; please "
    "try again in a few minutes.",
    "err_rate": "Too many attempts. Please wait a few minutes and try again.",
    "err_csrf": "This form has expired. Open the link from your email again and retry.",
    "err_stripe": "Enter your card in the box above.",
    "gone_title": "This link can no longer be used",
    "gone_expired": "This link has expired. Every reminder email brings a new link, or you "
    "can ask us for one.",
    "gone_used": "This link has already been used: your card details were changed after we "
    "sent it. Use the link in the newest email from us.",
    "gone_tampered": "This link is not valid. Copy the whole link from the email and try again.",
    "gone_cancelled": "Your subscription has ended, so the card can no longer be changed here. "
    "Contact us if you want to start again.",
    "challenge_title": "Confirm the card with your bank",
    "challenge_intro": "Your bank asks you to confirm that this card is yours: {card}.",
    "challenge_approve": "Confirm",
    "challenge_deny": "Cancel",
    "challenge_stripe": "Your bank may open a window to confirm the card.",
    "done_title": "Thank you",
    "done_paid": "Your card is updated and the amount due has been paid. Your subscription "
    "is active.",
    "done_saved": "Your card is updated. It will be used from your next billing date; nothing "
    "was charged now.",
    "done_charge_declined": "Your card is saved, but the payment of the amount due was "
    "declined. We will email you about what happens next.",
    "done_pending": "Your card is saved. The payment of the amount due is being processed; "
    "we will email you the result.",
    "done_reactivated": "The amount due has been paid and your subscription is active again.",
    "done_reactivate_declined": "Your current card was declined again. Go back to the page "
    "and give us a new card.",
    "done_nothing_due": "There was nothing to pay.",
    "back": "Back to the card page",
    "rate_title": "Please wait",
    "error_title": "Something went wrong",
}

DA: dict[str, str] = {
    "title": "Opdater dit kort",
    "greeting": "Hej {name}",
    "intro": "Her kan du give os et nyt kort til dit abonnement.",
    "plan": "Abonnement",
    "status": "Status",
    "amount_due": "Skyldigt beløb",
    "nothing_due": "Intet udestående",
    "current_card": "Nuværende kort",
    "no_card": "Intet kort registreret",
    "card_line": "{brand} der slutter på {last4}, udløber {expiry}",
    "status_active": "Aktivt",
    "status_past_due": "Betaling forfalden",
    "status_suspended": "Suspenderet",
    "status_cancelled": "Opsagt",
    "next_due": "Når du opdaterer dit kort, trækker vi det skyldige beløb, {amount}, på det "
    "nye kort med det samme, og dit abonnement fortsætter.",
    "next_due_suspended": "Når du opdaterer dit kort, trækker vi det skyldige beløb, "
    "{amount}, på det nye kort med det samme, og dit abonnement bliver genaktiveret.",
    "next_later": "Der trækkes intet nu. Dit nye kort bruges fra din næste betalingsdato, {date}.",
    "next_later_nodate": "Der trækkes intet nu. Dit nye kort bruges fra din næste betalingsdato.",
    "verify_note": "Vi kontrollerer det nye kort med en godkendelse. Det er ikke en betaling, "
    "og den forsvinder fra din kontoudskrift.",
    "secure_note": "Dit kortnummer går direkte til vores betalingsudbyder. Vi gemmer kun "
    "korttype, de sidste fire cifre og udløbsdatoen.",
    "new_card": "Nyt kort",
    "card_number": "Kortnummer",
    "exp_month": "Udløbsmåned",
    "exp_year": "Udløbsår",
    "cvc": "CVC",
    "remove_old": "Fjern mit tidligere kort",
    "submit": "Opdater kort",
    "reactivate_title": "Genaktiver med dit nuværende kort",
    "reactivate_intro": "Dit abonnement er suspenderet. Du kan betale det skyldige beløb med "
    "dit nuværende kort og genoptage det med det samme, eller give os et nyt kort ovenfor.",
    "reactivate": "Genaktiver mit abonnement",
    "support": "Spørgsmål? Skriv til {email}.",
    "err_number": "Kortnummeret er ikke gyldigt. Tjek det og prøv igen.",
    "err_expiry": "Tjek udløbsmåned og -år.",
    "err_expired": "Kortet er udløbet. Brug et kort, der stadig er gyldigt.",
    "err_cvc": "CVC er de 3 eller 4 cifre på kortet. Tjek det og prøv igen.",
    "err_declined": "Din bank afviste kortet. Prøv et andet kort, eller kontakt din bank.",
    "err_incorrect_cvc": "Din bank siger, at CVC ikke er korrekt. Tjek det og prøv igen.",
    "err_expired_card": "Din bank siger, at kortet er udløbet. Brug et andet kort.",
    "err_auth_failed": "Kortet blev ikke bekræftet hos din bank, så intet er ændret. Prøv "
    "igen, eller brug et andet kort.",
    "err_no_card": "Der er intet kort at trække beløbet på. Tilføj et nyt kort ovenfor.",
    "err_unavailable": "Vi kunne ikke nå betalingsudbyderen. Intet er ændret; prøv igen om "
    "nogle minutter.",
    "err_rate": "For mange forsøg. Vent nogle minutter, og prøv igen.",
    "err_csrf": "Formularen er udløbet. Åbn linket fra din e-mail igen, og prøv igen.",
    "err_stripe": "Indtast dit kort i feltet ovenfor.",
    "gone_title": "Dette link kan ikke længere bruges",
    "gone_expired": "Linket er udløbet. Hver påmindelse indeholder et nyt link, eller du kan "
    "bede os om et.",
    "gone_used": "Linket er allerede brugt: dine kortoplysninger er ændret, efter vi sendte "
    "det. Brug linket i den nyeste e-mail fra os.",
    "gone_tampered": "Linket er ikke gyldigt. Kopier hele linket fra e-mailen, og prøv igen.",
    "gone_cancelled": "Dit abonnement er ophørt, så kortet kan ikke længere ændres her. "
    "Kontakt os, hvis du vil starte igen.",
    "challenge_title": "Bekræft kortet hos din bank",
    "challenge_intro": "Din bank beder dig bekræfte, at kortet er dit: {card}.",
    "challenge_approve": "Bekræft",
    "challenge_deny": "Annuller",
    "challenge_stripe": "Din bank åbner måske et vindue, hvor du bekræfter kortet.",
    "done_title": "Tak",
    "done_paid": "Dit kort er opdateret, og det skyldige beløb er betalt. Dit abonnement er "
    "aktivt.",
    "done_saved": "Dit kort er opdateret. Det bruges fra din næste betalingsdato; der er ikke "
    "trukket noget nu.",
    "done_charge_declined": "Dit kort er gemt, men betalingen af det skyldige beløb blev "
    "afvist. Vi sender dig en e-mail om, hvad der sker nu.",
    "done_pending": "Dit kort er gemt. Betalingen af det skyldige beløb behandles; vi sender "
    "dig resultatet på e-mail.",
    "done_reactivated": "Det skyldige beløb er betalt, og dit abonnement er aktivt igen.",
    "done_reactivate_declined": "Dit nuværende kort blev afvist igen. Gå tilbage til siden, "
    "og giv os et nyt kort.",
    "done_nothing_due": "Der var intet at betale.",
    "back": "Tilbage til kortsiden",
    "rate_title": "Vent venligst",
    "error_title": "Noget gik galt",
}

_TEXTS = {"en": EN, "da": DA}


class Lang:
    """The words and formats of one page view."""

    def __init__(self, requested: str | None) -> None:
        self.code, self.format_locale = choose_locale(requested, LOCALES)
        self.t = _TEXTS[self.code]

    def money(self, amount: int, currency: str) -> str:
        return money(amount, currency, self.format_locale) or ""

    def day(self, when: date) -> str:
        return str(format_date(when, "long", locale=self.format_locale))
