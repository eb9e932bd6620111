-- Leave a tenth of each page of contacts free, so that storing a temporary
-- password (a 97-byte argon2id hash where there was none) can stay on the row's
-- page: a heap-only update that writes none of the four indexes of contacts. With
-- packed pages about half of these updates moved the row and wrote every index.
-- Pages written before this change fill up as they did; rows written after it
-- (and a table rewritten by VACUUM FULL) keep the space.
ALTER TABLE contacts SET (fillfactor = 90);
