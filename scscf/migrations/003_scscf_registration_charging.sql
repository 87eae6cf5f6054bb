-- Charging function addresses of a registered set: the
-- P-Charging-Function-Addresses value built from the HSS's
-- Charging-Information (TS 29.229 §6.3.19), '' when the HSS sent none.
ALTER TABLE scscf_registration ADD COLUMN charging text NOT NULL DEFAULT '';

---- create above / drop below ----
ALTER TABLE scscf_registration DROP COLUMN charging;
