-- The low-balance SMS (issue 18, optional part of item 5): opted in per user; at most one SMS per
-- downward crossing of the threshold (low_balance_alerted is set when one was sent and cleared
-- once the balance is back at or above the threshold).
ALTER TABLE users ADD COLUMN low_balance_sms INTEGER NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN low_balance_alerted INTEGER NOT NULL DEFAULT 0;
