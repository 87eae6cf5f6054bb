-- Check impi's provisioning columns in a trigger instead of CHECK
-- constraints, so that MAR's SQN reservation (UPDATE impi SET sqn) stops
-- paying for them.
--
-- PostgreSQL evaluates every CHECK constraint of a table on every UPDATE,
-- whatever columns the UPDATE sets, and rebuilds each constraint's
-- expression from its stored text once per statement. impi has thirteen;
-- together they cost about 130 µs of PostgreSQL CPU per SQN reservation
-- on the 2-core lab machine (UPDATE of one impi row 227 → 92–102 µs, MAR's
-- statement 600 → 410–470 µs; docs/performance.md, round 8).
--
-- The twelve checks that do not involve sqn move to impi_check(), which
-- fires only when an INSERT or an UPDATE writes one of the columns they
-- read. It raises what the constraints raised: SQLSTATE 23514
-- (check_violation) with the same constraint names, which imsctl reports
-- as "invalid value (constraint …)". The same NULL rule holds: a check
-- whose expression is NULL passes. impi_sqn_check stays a constraint.

ALTER TABLE impi
    DROP CONSTRAINT impi_identity_check,
    DROP CONSTRAINT impi_k_check,
    DROP CONSTRAINT impi_op_check,
    DROP CONSTRAINT impi_op_type_check,
    DROP CONSTRAINT impi_amf_check,
    DROP CONSTRAINT impi_auth_schemes_check,
    DROP CONSTRAINT impi_check,
    DROP CONSTRAINT impi_digest_ha1_check,
    DROP CONSTRAINT impi_check1,
    DROP CONSTRAINT impi_check2,
    DROP CONSTRAINT impi_check3,
    DROP CONSTRAINT impi_check4;

CREATE FUNCTION impi_check() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    failed text;
BEGIN
    failed := CASE
        WHEN NOT (NEW.identity <> '' AND NEW.identity !~ '\s') THEN 'impi_identity_check'
        WHEN NOT (NEW.k IS NULL OR octet_length(NEW.k) = 16) THEN 'impi_k_check'
        WHEN NOT (NEW.op IS NULL OR octet_length(NEW.op) = 16) THEN 'impi_op_check'
        WHEN NOT (NEW.op_type IN ('op', 'opc')) THEN 'impi_op_type_check'
        WHEN NOT (octet_length(NEW.amf) = 2) THEN 'impi_amf_check'
        WHEN NOT (NEW.auth_schemes <@ ARRAY['aka', 'akav2', 'md5']::text[]) THEN 'impi_auth_schemes_check'
        WHEN NOT (NEW.default_scheme IS NULL OR NEW.default_scheme = ANY (NEW.auth_schemes)) THEN 'impi_check'
        WHEN NOT (NEW.digest_ha1 IS NULL OR NEW.digest_ha1 ~ '^[0-9a-f]{32}$') THEN 'impi_digest_ha1_check'
        WHEN NOT ((NEW.k IS NULL) = (NEW.op IS NULL) AND (NEW.op IS NULL) = (NEW.op_type IS NULL)) THEN 'impi_check1'
        WHEN NOT (NEW.k IS NOT NULL OR NOT (NEW.auth_schemes && ARRAY['aka', 'akav2']::text[])) THEN 'impi_check2'
        WHEN NOT (NEW.digest_ha1 IS NOT NULL OR NEW.password IS NOT NULL OR NOT ('md5' = ANY (NEW.auth_schemes))) THEN 'impi_check3'
        WHEN NOT ((NEW.digest_ha1 IS NULL) = (NEW.digest_realm IS NULL)) THEN 'impi_check4'
    END;
    IF failed IS NOT NULL THEN
        RAISE EXCEPTION 'new row for relation "impi" violates check constraint "%"', failed
            USING ERRCODE = 'check_violation', CONSTRAINT = failed, TABLE = 'impi', SCHEMA = TG_TABLE_SCHEMA;
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER impi_check
    BEFORE INSERT OR UPDATE OF identity, k, op, op_type, amf, auth_schemes, default_scheme,
        digest_realm, digest_ha1, password ON impi
    FOR EACH ROW EXECUTE FUNCTION impi_check();

---- create above / drop below ----

DROP TRIGGER impi_check ON impi;
DROP FUNCTION impi_check();

ALTER TABLE impi
    ADD CONSTRAINT impi_identity_check CHECK (identity <> '' AND identity !~ '\s'),
    ADD CONSTRAINT impi_k_check CHECK (k IS NULL OR octet_length(k) = 16),
    ADD CONSTRAINT impi_op_check CHECK (op IS NULL OR octet_length(op) = 16),
    ADD CONSTRAINT impi_op_type_check CHECK (op_type IN ('op', 'opc')),
    ADD CONSTRAINT impi_amf_check CHECK (octet_length(amf) = 2),
    ADD CONSTRAINT impi_auth_schemes_check CHECK (auth_schemes <@ ARRAY['aka', 'akav2', 'md5']::text[]),
    ADD CONSTRAINT impi_check CHECK (default_scheme IS NULL OR default_scheme = ANY (auth_schemes)),
    ADD CONSTRAINT impi_digest_ha1_check CHECK (digest_ha1 IS NULL OR digest_ha1 ~ '^[0-9a-f]{32}$'),
    ADD CONSTRAINT impi_check1 CHECK ((k IS NULL) = (op IS NULL) AND (op IS NULL) = (op_type IS NULL)),
    ADD CONSTRAINT impi_check2 CHECK (k IS NOT NULL OR NOT (auth_schemes && ARRAY['aka', 'akav2']::text[])),
    ADD CONSTRAINT impi_check3 CHECK (digest_ha1 IS NOT NULL OR password IS NOT NULL OR NOT ('md5' = ANY (auth_schemes))),
    ADD CONSTRAINT impi_check4 CHECK ((digest_ha1 IS NULL) = (digest_realm IS NULL));
