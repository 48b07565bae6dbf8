-- Redemption codes (兑换码): created in batches by an admin, each redeemed once by one user.
-- Only the SHA-256 of a code is stored.
CREATE TABLE redeem_codes (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    code_hash    TEXT NOT NULL UNIQUE,
    credits      INTEGER NOT NULL CHECK (credits > 0),
    batch        TEXT NOT NULL,
    note         TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    redeemed_by  INTEGER REFERENCES users(id),
    redeemed_at  INTEGER
);
