-- deploy/postgres-roles.sql — the CRM's two PostgreSQL roles and its databases. Run as a superuser; idempotent.
-- Used by deploy/postgres.sh (psql over the private socket, on every start) and by deploy/docker-compose.yml
-- (/docker-entrypoint-initdb.d, on the first start).
--
--   crm_owner  owns the database (so its public schema) and the event log; runs `crm db migrate`, the only
--              step that creates or changes the log. CREATEDB so that the tests can make a database each.
--   crm        the application (CRM_DATABASE_URL). `crm db migrate` grants it SELECT and INSERT on the log and
--              EXECUTE on the SECURITY DEFINER functions that take the log's table lock, and gives it a schema
--              `crm` of its own (first in the default search_path "$user", public) for the tables it creates
--              (read models, positions, personal-data keys); it may create nothing in public. As it does not own
--              the log, UPDATE, DELETE, TRUNCATE, ALTER (… DISABLE TRIGGER), DROP and changes of owner are refused.
--
-- crm_owner is a member of crm, never the reverse: the owner can end the application's sessions (DROP DATABASE
-- … WITH (FORCE)) and adopt log objects an older, single-role install let the application create; the
-- application gains nothing of the owner's. The passwords are for loopback development: change them elsewhere.
DO $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'crm_owner') THEN
    CREATE ROLE crm_owner;
  END IF;
  ALTER ROLE crm_owner LOGIN CREATEDB NOSUPERUSER NOCREATEROLE NOREPLICATION NOBYPASSRLS PASSWORD 'crm_owner';
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'crm') THEN
    CREATE ROLE crm;
  END IF;
  -- An older deploy gave crm CREATEDB and ownership of everything; the application needs neither.
  ALTER ROLE crm LOGIN NOCREATEDB NOSUPERUSER NOCREATEROLE NOREPLICATION NOBYPASSRLS PASSWORD 'crm';
  IF pg_has_role('crm', 'crm_owner', 'MEMBER') THEN
    REVOKE crm_owner FROM crm;
  END IF;
  IF NOT pg_has_role('crm_owner', 'crm', 'MEMBER') THEN
    GRANT crm TO crm_owner;
  END IF;
END
$$;

SELECT 'CREATE DATABASE crm OWNER crm_owner ENCODING ''UTF8'' TEMPLATE template0'
 WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = 'crm')
\gexec

-- The owner of a database owns its public schema (PostgreSQL 15+), and a schema's owner may drop it with
-- everything in it: the database must never belong to the application.
ALTER DATABASE crm OWNER TO crm_owner;

-- The test cluster's shards (CRM_SHARD_URLS, services/sharding): crm is the default shard, crm_shard1 and
-- crm_shard2 the others, on this same server; each owned by crm_owner and migrated like crm (`crm db migrate`
-- with CRM_SHARD_OWNER_URLS: deploy/postgres.sh migrate). An installation with one database ignores them.
SELECT format('CREATE DATABASE %I OWNER crm_owner ENCODING ''UTF8'' TEMPLATE template0', name)
  FROM unnest(ARRAY['crm_shard1', 'crm_shard2']) AS name
 WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = name)
\gexec

ALTER DATABASE crm_shard1 OWNER TO crm_owner;
ALTER DATABASE crm_shard2 OWNER TO crm_owner;
