"""Read models built from the event log; each module handles events and answers queries."""
