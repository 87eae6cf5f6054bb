-- S-CSCF registrations (bindings), one row per registered implicit
-- registration set, written through on every change and reloaded at start.
CREATE TABLE scscf_registration (
    aor         text PRIMARY KEY,           -- IMPU first registered (canonical)
    impi        text NOT NULL,
    impus       text[] NOT NULL,            -- implicit registration set, aor first
    barred      text[] NOT NULL DEFAULT '{}',
    user_data   bytea,                      -- User-Data XML of the last SAA/PPR
    contacts    jsonb NOT NULL,             -- []Contact
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX scscf_registration_impi ON scscf_registration (impi);

---- create above / drop below ----
DROP TABLE scscf_registration;
