-- Hardening (issue 16): the per-user cap on unfinished tasks counts them by an index seek, and
-- console-submitted tasks sign callbacks with a per-user secret (rotatable from the console).
CREATE INDEX tasks_user_status ON tasks(user_id, status);
ALTER TABLE users ADD COLUMN callback_secret TEXT;
-- SMS codes remember the (hashed) device cookie that asked for them: a device that logged in to a
-- phone before is not held to that phone's daily cap, so strangers cannot lock its owner out.
ALTER TABLE sms_codes ADD COLUMN device TEXT;
CREATE INDEX sms_codes_device ON sms_codes(device, created_at);
