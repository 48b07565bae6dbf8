-- Money in units of 1/10,000 credit (`billing::UNITS_PER_CREDIT`): a chat call pays its list
-- price exactly instead of a rounded-up whole credit. users.balance, ledger.amount,
-- ledger.balance_after, reservations.amount/charged and chat_usage.credits are in units from
-- here on; task prices (tasks.credits), redemption codes and recharge orders stay whole credits.
UPDATE users SET balance = balance * 10000;
UPDATE ledger SET amount = amount * 10000, balance_after = balance_after * 10000;
UPDATE reservations SET amount = amount * 10000, charged = charged * 10000;
UPDATE chat_usage SET credits = credits * 10000;

-- What a user reads for a ledger row or a call (对话 qwen3-max, 视频 … 5 秒 720P); `reason`
-- keeps the internal detail.
ALTER TABLE ledger ADD COLUMN label TEXT;
ALTER TABLE reservations ADD COLUMN label TEXT;

-- A chat hold belongs to the process serving the call and lives as long as that process does:
-- it is released only when the owner's lease (renewed by a heartbeat) has run out. A hold
-- released that way becomes 'orphaned'; a late settlement by its owner still charges it.
ALTER TABLE reservations ADD COLUMN owner TEXT;
CREATE INDEX reservations_owner ON reservations(status, owner);
CREATE TABLE process_leases (
    owner        TEXT PRIMARY KEY,
    lease_until  BIGINT NOT NULL,
    started_at   BIGINT NOT NULL
);
