-- P-CSCF contact store (write-through copy of the in-memory store).
CREATE TABLE pcscf_contacts (
    key        text PRIMARY KEY,
    aor        text NOT NULL,
    transport  text NOT NULL,
    host       text NOT NULL,
    port       integer NOT NULL,
    expires    timestamptz NOT NULL,
    data       jsonb NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX pcscf_contacts_expires ON pcscf_contacts (expires);

---- create above / drop below ----

DROP TABLE pcscf_contacts;
