-- A user's role and scope decide which alerts they see, as the buildings'
-- grids do: a change to a user moves the alert pages' change counter too
-- (issue 16). The API keeps each user's record with the counter it was
-- read at, instead of reading it on every request, and reads it again when
-- the counter moves — so a demotion or a deletion, by any process, takes
-- effect at the next request, as before.
CREATE TRIGGER users_changed_insert AFTER INSERT ON users
BEGIN UPDATE change_counters SET n = n + 1 WHERE name = 'alerts'; END;
CREATE TRIGGER users_changed_update AFTER UPDATE ON users
BEGIN UPDATE change_counters SET n = n + 1 WHERE name = 'alerts'; END;
CREATE TRIGGER users_changed_delete AFTER DELETE ON users
BEGIN UPDATE change_counters SET n = n + 1 WHERE name = 'alerts'; END;
