-- The console as a work platform (issue 18): key governance, request ids for the call log, a
-- per-user low-balance notice.
-- A key's monthly spend limit in credits (NULL = none), checked before a call is accepted; a
-- key switched off by its owner (disabled_at) and a revoked key removed from the owner's list
-- (hidden_at; the row stays for the call log and the ledger).
ALTER TABLE api_keys ADD COLUMN monthly_limit BIGINT;
ALTER TABLE api_keys ADD COLUMN disabled_at BIGINT;
ALTER TABLE api_keys ADD COLUMN hidden_at BIGINT;
-- The X-Request-Id answered for the call that made the row.
ALTER TABLE chat_usage ADD COLUMN request_id TEXT;
ALTER TABLE tasks ADD COLUMN request_id TEXT;
-- Below this balance the console shows a notice (NULL = no notice).
ALTER TABLE users ADD COLUMN low_balance BIGINT;
CREATE INDEX chat_usage_key ON chat_usage(key_id, created_at);
CREATE INDEX chat_usage_request ON chat_usage(request_id);
CREATE INDEX tasks_key ON tasks(key_id, created_at);
