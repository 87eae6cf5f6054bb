-- Make the UPDATE triggers of migration 002 column-specific. Their WHEN
-- clause already kept the hot-path writes (impi.sqn by MAR, impu.user_state
-- by SAR) from notifying, but PostgreSQL still loaded and evaluated it for
-- every updated row: with UPDATE OF <columns> a statement that sets none
-- of them skips the trigger before the WHEN clause is looked at. Measured
-- with pgbench on the SQN UPDATE (2 clients, synchronous_commit off):
-- 7,683 → 9,966 statements/s.
--
-- Also notify on changes to the scscf table, so that the HSS can keep the
-- S-CSCF list of UAA Server-Capabilities in memory with the user data
-- (hss/store SCSCFCapabilities).

DROP TRIGGER hss_userdata_notify_update ON impu;
CREATE TRIGGER hss_userdata_notify_update
    AFTER UPDATE OF identity, type, barring, display_name, service_profile_id, implicit_set_id, wildcard_pattern ON impu
    FOR EACH ROW WHEN ((OLD.identity, OLD.type, OLD.barring, OLD.display_name, OLD.service_profile_id,
                        OLD.implicit_set_id, OLD.wildcard_pattern)
        IS DISTINCT FROM (NEW.identity, NEW.type, NEW.barring, NEW.display_name, NEW.service_profile_id,
                          NEW.implicit_set_id, NEW.wildcard_pattern))
    EXECUTE FUNCTION hss_userdata_notify();

DROP TRIGGER hss_userdata_notify_update ON impi;
CREATE TRIGGER hss_userdata_notify_update AFTER UPDATE OF identity, imsu_id ON impi
    FOR EACH ROW WHEN ((OLD.identity, OLD.imsu_id) IS DISTINCT FROM (NEW.identity, NEW.imsu_id))
    EXECUTE FUNCTION hss_userdata_notify();

CREATE TRIGGER hss_userdata_notify AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON scscf
    FOR EACH STATEMENT EXECUTE FUNCTION hss_userdata_notify();

---- create above / drop below ----

DROP TRIGGER hss_userdata_notify ON scscf;

DROP TRIGGER hss_userdata_notify_update ON impi;
CREATE TRIGGER hss_userdata_notify_update AFTER UPDATE ON impi
    FOR EACH ROW WHEN ((OLD.identity, OLD.imsu_id) IS DISTINCT FROM (NEW.identity, NEW.imsu_id))
    EXECUTE FUNCTION hss_userdata_notify();

DROP TRIGGER hss_userdata_notify_update ON impu;
CREATE TRIGGER hss_userdata_notify_update AFTER UPDATE ON impu
    FOR EACH ROW WHEN ((OLD.identity, OLD.type, OLD.barring, OLD.display_name, OLD.service_profile_id,
                        OLD.implicit_set_id, OLD.wildcard_pattern)
        IS DISTINCT FROM (NEW.identity, NEW.type, NEW.barring, NEW.display_name, NEW.service_profile_id,
                          NEW.implicit_set_id, NEW.wildcard_pattern))
    EXECUTE FUNCTION hss_userdata_notify();
