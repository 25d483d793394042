"""The funnel dashboard: one page served by the HTTP app, talking to the same API."""
