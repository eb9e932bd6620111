-- An import runs as a queued job (surviving restarts); it needs its file's path.
-- Imports cut short before this change cannot resume: they are marked failed.

ALTER TABLE imports ADD COLUMN file_path TEXT;
UPDATE imports SET status = 'failed', error = 'Herald was upgraded during the import. Import the file again: rows already imported are updated, not duplicated.'
WHERE status = 'running';
