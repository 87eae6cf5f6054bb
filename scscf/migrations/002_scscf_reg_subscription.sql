-- S-CSCF reg event package subscriptions (RFC 3680, TS 24.229 §5.4.2.1),
-- one row per SUBSCRIBE dialog, written on every change (new, refresh,
-- each NOTIFY's CSeq and version) and reloaded at start.
CREATE TABLE scscf_reg_subscription (
    call_id     text NOT NULL,
    local_tag   text NOT NULL,              -- our To tag of the SUBSCRIBE
    remote_tag  text NOT NULL,              -- the subscriber's From tag
    impu        text NOT NULL,              -- subscribed IMPU (Request-URI/To), canonical
    aor         text NOT NULL,              -- AOR of the registration set at subscribe time
    local_uri   text NOT NULL,              -- To URI of the SUBSCRIBE (From of NOTIFY)
    remote_uri  text NOT NULL,              -- From URI of the SUBSCRIBE (To of NOTIFY)
    subscriber  text NOT NULL,              -- authorised P-Asserted-Identity
    kind        text NOT NULL,              -- ue | pcscf | as
    target      text NOT NULL,              -- remote target (Contact of the SUBSCRIBE)
    route_set   text[] NOT NULL DEFAULT '{}', -- Record-Route of the SUBSCRIBE, in order
    local_cseq  bigint NOT NULL,            -- CSeq of the last NOTIFY sent
    version     integer NOT NULL,           -- reginfo version of the next NOTIFY
    expires     timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (call_id, local_tag)
);
CREATE INDEX scscf_reg_subscription_impu ON scscf_reg_subscription (impu);

---- create above / drop below ----
DROP TABLE scscf_reg_subscription;
