"""Closed sets of values the domain accepts (channels, kinds, priorities, statuses)."""

ACQUISITION_CHANNELS = ("email", "phone", "web", "social", "event", "referral", "search_ads", "partner")
TOUCH_CHANNELS = ("email", "phone", "visit", "social", "web", "event")
TOUCH_DIRECTIONS = ("inbound", "outbound")
ASSIGNMENT_RULES = ("region", "industry", "round_robin", "manual")
RESPONSE_KINDS = ("impression", "click", "registration", "attendance", "reply")
TICKET_PRIORITIES = ("low", "normal", "high", "urgent")
TICKET_STATUSES = ("open", "in_progress", "waiting_customer", "resolved", "closed")
