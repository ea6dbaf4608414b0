-- The durable queue of outgoing mail: a flow stores its rendered mail here and a worker
-- delivers it, so an SMTP outage delays mail but loses none. Times are unix seconds.
-- Identical in both dialects; keep in step with ../../postgres/<same directory>/up.sql.

CREATE TABLE mail_queue (
    -- UUIDv7: sorts by creation; also the left part of the Message-ID.
    id TEXT NOT NULL PRIMARY KEY,
    created_at BIGINT NOT NULL,
    -- What the mail is about (password_changed, …): names its templates.
    kind TEXT NOT NULL,
    -- The account it concerns; the mail outlives the account.
    account_id TEXT REFERENCES accounts (id) ON DELETE SET NULL,
    recipient TEXT NOT NULL,
    subject TEXT NOT NULL,
    -- Erased once sent (they may hold one-time links).
    text_body TEXT NOT NULL,
    html_body TEXT,
    -- Attempts started (a claim counts one).
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    -- A worker that claimed the mail holds it until then (several instances, one sender).
    lease_until BIGINT,
    sent_at BIGINT,
    -- Given up: refused for good or out of retries. Never deleted by Sesame.
    failed_at BIGINT,
    -- Why the last attempt failed; never a secret nor a body.
    last_error TEXT
);

-- The worker's question: which pending mails are due?
CREATE INDEX mail_queue_due_idx ON mail_queue (next_attempt_at)
    WHERE sent_at IS NULL AND failed_at IS NULL;
CREATE INDEX mail_queue_created_idx ON mail_queue (created_at);
