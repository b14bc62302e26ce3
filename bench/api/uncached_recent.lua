-- wrk script: as uncached.lua, but every cursor among the newest 1,000
-- alerts of the bench's 2,000 (ids 1,100–1,999): pages an operator paging
-- back through recent alerts asks for, none asked before at the start
-- (900 distinct pages, more than the page cache keeps), each cut from the
-- API's window of the newest alerts (bench/README.md, sixth pass).
counter = 0
request = function()
    counter = counter + 1
    local before = 1100 + (counter * 7919) % 900
    return wrk.format("GET", "/api/v1/alerts?limit=50&before=" .. before)
end
