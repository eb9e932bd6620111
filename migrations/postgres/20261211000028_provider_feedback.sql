-- Bounces and complaints from sending providers' webhooks: each provider's
-- credential (only a hash of a secret; a public key as it is) and what it last sent, and the notifications
-- taken (a replayed one changes nothing).
CREATE TABLE provider_credentials (
    provider TEXT PRIMARY KEY,
    secret_hash TEXT NOT NULL DEFAULT '',
    public_key TEXT NOT NULL DEFAULT '',
    sealed_secret TEXT NOT NULL DEFAULT '',
    created_at BIGINT NOT NULL,
    last_at BIGINT,
    last_ok BIGINT
);
CREATE TABLE provider_notices (
    provider TEXT NOT NULL,
    notice_id TEXT NOT NULL,
    received_at BIGINT NOT NULL,
    PRIMARY KEY (provider, notice_id)
);
CREATE INDEX provider_notices_received ON provider_notices (received_at);
