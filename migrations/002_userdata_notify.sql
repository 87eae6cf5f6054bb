-- NOTIFY hss_userdata on every committed change to the data a SAR's
-- User-Data / Charging-Information / Associated-Identities are built from
-- (hss/store subscriptionSQL), so that an HSS caching assembled user data
-- (hss/store/userdatacache.go) empties its cache. NOTIFY is sent at
-- commit; identical payloads of one transaction are folded into one.
--
-- impu and impi are written on the Cx hot path (impu.user_state by SAR,
-- impi.sqn by MAR): their UPDATE triggers fire only when a column the user
-- data uses changes, so registrations and SQN reservations notify nothing.

CREATE FUNCTION hss_userdata_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('hss_userdata', TG_TABLE_NAME);
    RETURN NULL;
END
$$;

CREATE TRIGGER hss_userdata_notify AFTER INSERT OR DELETE OR TRUNCATE ON impu
    FOR EACH STATEMENT EXECUTE FUNCTION hss_userdata_notify();
CREATE TRIGGER hss_userdata_notify_update AFTER UPDATE ON impu
    FOR EACH ROW WHEN ((OLD.identity, OLD.type, OLD.barring, OLD.display_name, OLD.service_profile_id,
                        OLD.implicit_set_id, OLD.wildcard_pattern)
        IS DISTINCT FROM (NEW.identity, NEW.type, NEW.barring, NEW.display_name, NEW.service_profile_id,
                          NEW.implicit_set_id, NEW.wildcard_pattern))
    EXECUTE FUNCTION hss_userdata_notify();

CREATE TRIGGER hss_userdata_notify AFTER INSERT OR DELETE OR TRUNCATE ON impi
    FOR EACH STATEMENT EXECUTE FUNCTION hss_userdata_notify();
CREATE TRIGGER hss_userdata_notify_update AFTER UPDATE ON impi
    FOR EACH ROW WHEN ((OLD.identity, OLD.imsu_id) IS DISTINCT FROM (NEW.identity, NEW.imsu_id))
    EXECUTE FUNCTION hss_userdata_notify();

CREATE TRIGGER hss_userdata_notify AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON imsu
    FOR EACH STATEMENT EXECUTE FUNCTION hss_userdata_notify();
CREATE TRIGGER hss_userdata_notify AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON service_profile
    FOR EACH STATEMENT EXECUTE FUNCTION hss_userdata_notify();
CREATE TRIGGER hss_userdata_notify AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON service_profile_ifc
    FOR EACH STATEMENT EXECUTE FUNCTION hss_userdata_notify();
CREATE TRIGGER hss_userdata_notify AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON service_profile_shared_ifc_set
    FOR EACH STATEMENT EXECUTE FUNCTION hss_userdata_notify();
CREATE TRIGGER hss_userdata_notify AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON ifc
    FOR EACH STATEMENT EXECUTE FUNCTION hss_userdata_notify();
CREATE TRIGGER hss_userdata_notify AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON spt
    FOR EACH STATEMENT EXECUTE FUNCTION hss_userdata_notify();
CREATE TRIGGER hss_userdata_notify AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON application_server
    FOR EACH STATEMENT EXECUTE FUNCTION hss_userdata_notify();
CREATE TRIGGER hss_userdata_notify AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON charging_function
    FOR EACH STATEMENT EXECUTE FUNCTION hss_userdata_notify();

---- create above / drop below ----

DROP TRIGGER hss_userdata_notify ON charging_function;
DROP TRIGGER hss_userdata_notify ON application_server;
DROP TRIGGER hss_userdata_notify ON spt;
DROP TRIGGER hss_userdata_notify ON ifc;
DROP TRIGGER hss_userdata_notify ON service_profile_shared_ifc_set;
DROP TRIGGER hss_userdata_notify ON service_profile_ifc;
DROP TRIGGER hss_userdata_notify ON service_profile;
DROP TRIGGER hss_userdata_notify ON imsu;
DROP TRIGGER hss_userdata_notify_update ON impi;
DROP TRIGGER hss_userdata_notify ON impi;
DROP TRIGGER hss_userdata_notify_update ON impu;
DROP TRIGGER hss_userdata_notify ON impu;
DROP FUNCTION hss_userdata_notify();
