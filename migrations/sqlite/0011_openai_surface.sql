-- The OpenAI surface (issue 17).
-- A digest of the checked submission a task was made from: an Idempotency-Key reused with a
-- different request is refused (422) instead of answering the first task. NULL on older rows
-- (accepted as a match: nothing to compare).
ALTER TABLE tasks ADD COLUMN request_hash TEXT;
-- When the owner deleted the task through DELETE /v1/videos/{id} (unix ms): hidden from the
-- owner's lists and lookups; the row, its ledger entries and its files stay.
ALTER TABLE tasks ADD COLUMN hidden_at BIGINT;
