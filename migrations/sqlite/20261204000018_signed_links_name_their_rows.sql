-- From this version on, a signed link (unsubscribe) names its contact and group
-- with their creation times, so a link made for a deleted row never acts on a
-- later row that got the same id (SQLite reuses the highest id once deleted).
-- Links made before, which name ids only, keep working for rows created before
-- this moment.
CREATE TABLE signed_link_cutover (
    id INTEGER PRIMARY KEY,
    at BIGINT NOT NULL
);
INSERT INTO signed_link_cutover (id, at) VALUES (1, CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER));
