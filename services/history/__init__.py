"""Bringing history in and out: the history-line format, its export, and the bulk import (rules checked,
states encoded in worker processes, written with COPY)."""
