-- Contact search also finds text inside an email or a name ("mueller" finds
-- ben.mueller@…, "example.com" the domain): a trigram index (pg_trgm, a trusted
-- extension: the database's owner may create it) over the email and the
-- lower-case names, which LIKE '%…%' uses.
CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE INDEX contacts_words ON contacts
    USING gin ((email || ' ' || first_key || ' ' || last_key) gin_trgm_ops);
