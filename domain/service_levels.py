"""Service-quality rules of after-sales tickets, defined once for every read model that counts them."""

from __future__ import annotations

SATISFIED_SCORE = 4
"""Ratings are 1–5; a rating of 4 or 5 counts as satisfied (CSAT's usual top-two-box), ends a ticket's
service funnel as won, and makes a customer a loyalty candidate."""
