"""The demo's sample CRM: a year of campaigns, leads, deals and tickets, deterministic from a seed."""
