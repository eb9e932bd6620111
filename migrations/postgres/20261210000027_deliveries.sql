-- Every email sent, and what the mail system later said of it. `reference` names
-- the delivery in its Message-ID (<reference@domain>) and its bounce address
-- (bounces+reference.tag@bounce-domain); `address` is the recipient in lower case.
CREATE TABLE deliveries (
    id BIGSERIAL PRIMARY KEY,
    reference TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    run_id BIGINT,
    contact_id BIGINT,
    message_id BIGINT,
    address TEXT NOT NULL,
    smtp_message_id TEXT NOT NULL,
    sent_at BIGINT NOT NULL,
    fate TEXT NOT NULL DEFAULT 'sent',
    fate_at BIGINT,
    fate_detail TEXT NOT NULL DEFAULT ''
);
CREATE INDEX deliveries_run ON deliveries (run_id);
CREATE INDEX deliveries_contact ON deliveries (contact_id, sent_at);
CREATE INDEX deliveries_address ON deliveries (address, sent_at);
CREATE INDEX deliveries_sent ON deliveries (sent_at);

-- Bounces and complaints as they came in: matched to a delivery, or kept (with
-- the start of the report) for an admin to look at.
CREATE TABLE mail_reports (
    id BIGSERIAL PRIMARY KEY,
    received_at BIGINT NOT NULL,
    kind TEXT NOT NULL,
    delivery_id BIGINT,
    matched_by TEXT NOT NULL DEFAULT '',
    address TEXT NOT NULL DEFAULT '',
    status TEXT NOT NULL DEFAULT '',
    diagnostic TEXT NOT NULL DEFAULT '',
    sender TEXT NOT NULL DEFAULT '',
    raw TEXT NOT NULL DEFAULT ''
);
CREATE INDEX mail_reports_delivery ON mail_reports (delivery_id);
CREATE INDEX mail_reports_received ON mail_reports (received_at, id);

-- Moves with every change of the suppression list, in the changing transaction:
-- each instance's cached copy of the list is read again when it moved.
CREATE TABLE suppression_version (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    version BIGINT NOT NULL
);
INSERT INTO suppression_version (id, version) VALUES (1, 0);
