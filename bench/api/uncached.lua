-- wrk script: the alert list with a different `before` cursor on every
-- request (1,900 distinct pages, more than the page cache keeps), so that
-- nearly every request builds its page from the store.
counter = 0
request = function()
    counter = counter + 1
    local before = 101 + (counter * 7919) % 1900
    return wrk.format("GET", "/api/v1/alerts?limit=50&before=" .. before)
end
