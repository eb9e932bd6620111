-- What a sending provider calls an email: the id its SMTP answer gave
-- ("queued as …", SES's "Ok <id>"), so its bounce webhooks find the email; and
-- the Amazon SNS topics whose notifications an admin turned on.
ALTER TABLE deliveries ADD COLUMN queued_as TEXT;
CREATE INDEX deliveries_queued_as ON deliveries (queued_as);
ALTER TABLE provider_credentials ADD COLUMN topics TEXT NOT NULL DEFAULT '';
