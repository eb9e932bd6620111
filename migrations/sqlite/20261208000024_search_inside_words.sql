-- Contact search also finds text inside an email or a name ("mueller" finds
-- ben.mueller@…, "example.com" the domain): an FTS5 index of three-character
-- pieces (trigram) over the email and the lower-case names, kept by triggers.
CREATE VIRTUAL TABLE contacts_words USING fts5(
    email, first_key, last_key,
    content = 'contacts', content_rowid = 'id', tokenize = 'trigram'
);
INSERT INTO contacts_words (contacts_words) VALUES ('rebuild');
CREATE TRIGGER contacts_words_insert AFTER INSERT ON contacts BEGIN
    INSERT INTO contacts_words (rowid, email, first_key, last_key)
    VALUES (new.id, new.email, new.first_key, new.last_key);
END;
CREATE TRIGGER contacts_words_delete AFTER DELETE ON contacts BEGIN
    INSERT INTO contacts_words (contacts_words, rowid, email, first_key, last_key)
    VALUES ('delete', old.id, old.email, old.first_key, old.last_key);
END;
CREATE TRIGGER contacts_words_update AFTER UPDATE OF email, first_key, last_key ON contacts BEGIN
    INSERT INTO contacts_words (contacts_words, rowid, email, first_key, last_key)
    VALUES ('delete', old.id, old.email, old.first_key, old.last_key);
    INSERT INTO contacts_words (rowid, email, first_key, last_key)
    VALUES (new.id, new.email, new.first_key, new.last_key);
END;
