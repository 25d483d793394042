"""Several PostgreSQL databases for the event log ("shards"), commands routed by their record's home
partition (domain/partitions.py); see ../shared/SCALE.md, "Write model".

- `shard_settings`: CRM_SHARD_URLS / CRM_SHARD_OWNER_URLS (unset: one database, exactly as before);
- `shard_map`: the partition → shard table `crm_shard_map` in the default shard;
- `routing`: which shard a command belongs to (pure, unit-tested);
- `reference`: reference data (pipelines, vocabularies, rates, campaigns) copied to every shard;
- `router`: `ShardedApplication`, one `CrmApplication` per shard behind the gateways' usual interface.
"""
