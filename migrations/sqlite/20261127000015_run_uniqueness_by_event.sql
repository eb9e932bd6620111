-- PostgreSQL re-keys the runs' uniqueness by event (and drops the index by event)
-- in this version. SQLite keeps both: its UNIQUE constraint is part of the table,
-- and an update writes only the indexes whose columns it changes, so the extra
-- index costs SQLite nothing when a run is claimed or finished.
SELECT 1;
