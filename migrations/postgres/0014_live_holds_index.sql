-- Open holds are found through one small partial index instead of two full ones on `status`
-- (issue 15/21: the chat path writes a hold and closes it on every call; each full index on
-- `status` cost an insert at the hold and a delete + insert at the close, and a page written
-- per commit). The queries that look for open holds (the orphan sweep, the lease clean-up)
-- say `status = 'open'` literally, so they use it; nothing filters holds by age any more.
DROP INDEX reservations_open;
DROP INDEX reservations_owner;
CREATE INDEX reservations_live ON reservations(owner) WHERE status = 'open';

-- Nothing looks chat calls up by request id through an index (the call log filters a user's or a
-- key's rows, which have their own indexes), and each call paid an index insert for it.
DROP INDEX chat_usage_request;
