-- Tables of the web service, in schema app of database web. Run by the database owner
-- (as the superuser: SET ROLE web_owner); the service's login role svc_web_ro only reads
-- them (ADR 0004). Idempotent.
CREATE TABLE IF NOT EXISTS app.items (
    id   serial PRIMARY KEY,
    name text NOT NULL
);
