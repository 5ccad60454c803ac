-- Tables of the api service, in schema app of database api. Run by the database owner
-- (as the superuser: SET ROLE api_owner), never by the service's login role svc_api_rw,
-- which can read and write rows but create nothing (ADR 0004). Idempotent.
CREATE TABLE IF NOT EXISTS app.items (
    id   serial PRIMARY KEY,
    name text NOT NULL
);
