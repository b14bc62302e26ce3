-- A user's role and scope decide which alerts they see, as the buildings'
-- grids do: a change to a user moves the alert pages' change counter too
-- (issue 16). The API keeps each user's record with the counter it was
-- read at, instead of reading it on every request, and reads it again when
-- the counter moves — so a demotion or a deletion, by any process, takes
-- effect at the next request, as before.
CREATE CONSTRAINT TRIGGER users_changed AFTER INSERT OR UPDATE OR DELETE ON users
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION bump_alerts_counter();
