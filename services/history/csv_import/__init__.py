"""`crm import` of CSV exports of other CRMs (Salesforce, HubSpot, …) through a TOML mapping file.

The mapping (`mapping`) says which files hold which shape of export and what their columns mean; each shape
(`shape_*`) turns rows into calls of the aggregates' own domain methods on aggregates held in memory
(`import_session`), so every row passes the same rules as a command; the new events become history lines
that `services.history.importer.import_history` checks again and writes, all or nothing (`csv_importer`).
"""
