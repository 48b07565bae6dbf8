-- Credit leases (issue 21, docs/money.md "One commit per chat call"): a gateway process claims a
-- slice of a user's balance in one transaction and holds chat calls against it in memory, so a
-- call waits for one commit (its settlement) instead of two (hold, then settlement).
--
-- `users.leased` is the part of the balance claimed by live leases, always the sum of their
-- `amount`s. A lease does not change the balance (no ledger row): a call's charge does, and it
-- lowers `leased` by the same amount. Everything else that takes money (holds, debits, late
-- charges) may only take `balance - leased`, so what a lease holds is there when its calls
-- settle, and 0 <= leased <= balance.
ALTER TABLE users ADD COLUMN leased BIGINT NOT NULL DEFAULT 0;

CREATE TABLE credit_leases (
    id TEXT PRIMARY KEY,
    user_id BIGINT NOT NULL REFERENCES users(id),
    -- The process (`process_leases.owner`) that holds calls against it.
    owner TEXT NOT NULL,
    -- Units still claimed: taken in, minus what its calls were charged, minus what went back.
    amount BIGINT NOT NULL CHECK (amount >= 0),
    -- live, ended (its owner gave the rest back), orphaned (its owner's process lease ran out).
    status TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
-- The orphan sweep looks for live leases of dead owners.
CREATE INDEX credit_leases_live ON credit_leases(owner) WHERE status = 'live';

-- What each chat call held (units), beside what it was charged: the hold is no longer a row of
-- its own (it lives in its process's memory, against the lease).
ALTER TABLE chat_usage ADD COLUMN held BIGINT;
