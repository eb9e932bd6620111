-- Idempotency-Key: per API key, the first answer to a request is kept for 24 hours
-- and given again to the same key with the same body.

CREATE TABLE api_idempotency (
    api_key_id INTEGER NOT NULL,
    idempotency_key TEXT NOT NULL,
    body_hash TEXT NOT NULL,
    status INTEGER NOT NULL,
    response TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (api_key_id, idempotency_key)
);
CREATE INDEX api_idempotency_created ON api_idempotency (created_at);
