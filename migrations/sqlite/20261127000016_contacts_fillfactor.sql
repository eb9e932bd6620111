-- PostgreSQL leaves free space on the pages of contacts in this version, so a
-- stored temporary password rewrites no index. SQLite has no such setting.
SELECT 1;
