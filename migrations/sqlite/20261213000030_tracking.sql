-- Opens and clicks. Each tracked email keeps the targets of its links as it was
-- sent (a JSON array; a click names a position, never a target), and each
-- message may turn tracking off for itself. Opens and clicks are written raw as
-- they come ("machine" names why one is not a person's: within 2 s of the send,
-- a HEAD, a link scanner, an image proxy, a burst of every link; "anonymous" ones
-- are kept without their delivery and contact), then decided 2 s later: counted
-- in the roll-ups, and a person's recorded as an event, in one transaction.
ALTER TABLE deliveries ADD COLUMN links TEXT;
-- The automation whose run sent the email, for its statistics (runs are pruned).
ALTER TABLE deliveries ADD COLUMN automation_id BIGINT;
-- When its unsubscribe link was first used (an unsubscribe counts for its message).
ALTER TABLE deliveries ADD COLUMN unsubscribed_at BIGINT;
CREATE INDEX deliveries_message ON deliveries (message_id, sent_at);
CREATE INDEX deliveries_automation ON deliveries (automation_id, sent_at);
ALTER TABLE messages ADD COLUMN track BIGINT NOT NULL DEFAULT 1;
-- 1: the contact asked (in the preference center) that their opens and clicks
-- are not recorded with them: they are counted anonymously.
ALTER TABLE contacts ADD COLUMN untracked BIGINT NOT NULL DEFAULT 0;
CREATE TABLE clicks (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at BIGINT NOT NULL,
    delivery_id BIGINT,
    message_id BIGINT,
    automation_id BIGINT,
    contact_id BIGINT,
    position BIGINT NOT NULL,
    target TEXT NOT NULL,
    machine TEXT NOT NULL DEFAULT '',
    anonymous BIGINT NOT NULL DEFAULT 0,
    decided BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX clicks_delivery ON clicks (delivery_id, at);
CREATE INDEX clicks_message ON clicks (message_id, at);
CREATE INDEX clicks_contact ON clicks (contact_id, at);
CREATE INDEX clicks_undecided ON clicks (decided, at);
CREATE TABLE opens (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at BIGINT NOT NULL,
    delivery_id BIGINT,
    message_id BIGINT,
    automation_id BIGINT,
    contact_id BIGINT,
    machine TEXT NOT NULL DEFAULT '',
    anonymous BIGINT NOT NULL DEFAULT 0,
    decided BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX opens_delivery ON opens (delivery_id, at);
CREATE INDEX opens_message ON opens (message_id, at);
CREATE INDEX opens_contact ON opens (contact_id, at);
CREATE INDEX opens_undecided ON opens (decided, at);
-- The roll-ups the statistics read, per message and automation and hour (0 for
-- none), kept in the transaction that decides the opens and clicks they count.
CREATE TABLE engagement_hourly (
    message_id BIGINT NOT NULL,
    automation_id BIGINT NOT NULL,
    hour BIGINT NOT NULL,
    opens BIGINT NOT NULL DEFAULT 0,
    unique_opens BIGINT NOT NULL DEFAULT 0,
    machine_opens BIGINT NOT NULL DEFAULT 0,
    clicks BIGINT NOT NULL DEFAULT 0,
    unique_clicks BIGINT NOT NULL DEFAULT 0,
    machine_clicks BIGINT NOT NULL DEFAULT 0,
    unsubscribes BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (message_id, automation_id, hour)
);
CREATE TABLE link_clicks (
    message_id BIGINT NOT NULL,
    automation_id BIGINT NOT NULL,
    target TEXT NOT NULL,
    clicks BIGINT NOT NULL DEFAULT 0,
    unique_clicks BIGINT NOT NULL DEFAULT 0,
    machine_clicks BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (message_id, automation_id, target)
);
