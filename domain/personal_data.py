"""Which event fields hold personal data, and whose: the data subject is the customer or lead itself.

Infrastructure encrypts these fields with a key per data subject; forgetting someone destroys the key
(crypto-shredding), so their personal data becomes unreadable everywhere while every other fact — and
so every funnel and count — stays intact.
"""

from __future__ import annotations

from domain.customer import Customer
from domain.lead import Lead

PERSONAL_FIELDS: dict[type, tuple[str, ...]] = {
    Customer.Registered: ("name", "email", "phone"),
    Customer.ContactDetailsChanged: ("email", "phone"),
    Customer.TouchLogged: ("summary",),
    Lead.Captured: ("name", "contact"),
    Lead.Contacted: ("summary",),
}
