-- A channel that failed repeatedly cools off: routing skips it until cooling_until (unix ms),
-- and the reason is shown by `llmage admin channel list`.
ALTER TABLE channels ADD COLUMN cooling_until BIGINT;
ALTER TABLE channels ADD COLUMN cooling_reason TEXT;
-- Most calls in flight through the channel from one process (NULL = no cap).
ALTER TABLE channels ADD COLUMN max_concurrency BIGINT;
-- Most calls per minute through the channel from one process (NULL = no limit).
ALTER TABLE channels ADD COLUMN rpm BIGINT;
