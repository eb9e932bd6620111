-- /readyz writes its one row here (replaced at each check): a database that
-- answers but cannot write (a full disk) is not ready.
CREATE TABLE write_probe (
    id INTEGER PRIMARY KEY,
    checked_at BIGINT NOT NULL
);
