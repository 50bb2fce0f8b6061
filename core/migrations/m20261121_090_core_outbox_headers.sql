-- Extra headers of an outgoing message (a JSON list of [name, value] pairs),
-- for the few the outbox allows: List-Unsubscribe and List-Unsubscribe-Post
-- of mass mail (RFC 2369, RFC 8058). None for every other message.
ALTER TABLE mail_outbox ADD COLUMN headers TEXT;
