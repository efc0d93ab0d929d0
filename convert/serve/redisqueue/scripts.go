package redisqueue

import "github.com/redis/go-redis/v9"

// The Lua scripts make every change of a task one atomic step on the
// server, fenced by the task's owner. Each is the prelude followed by its
// body. Their arguments start with the key prefix ("{rafs}:") and the
// consumer group; times are Unix nanoseconds as decimal strings, computed
// by the client (Lua numbers are doubles: the scripts compare times but
// never compute one), "" for none.
//
// Keys, all under one hash tag so that they share a cluster slot:
//
//	PREFIX task:ID     hash: spec (JSON), seq, status, error, attempts,
//	                   bytesIn, bytesOut, skipped, created, started,
//	                   finished, notBefore, owner, leaseUntil, entry (the
//	                   task's stream entry while it is queued or running)
//	PREFIX stream      stream of entries {id: ID}, read by the group
//	PREFIX delayed     sorted set: IDs of PENDING tasks by NotBefore
//	PREFIX order       sorted set: every ID by creation sequence
//	PREFIX status:S    sorted set: IDs in state S by creation sequence
//	PREFIX seq         the creation sequence counter
const prelude = `
local P, G = ARGV[1], ARGV[2]
local STREAM = P .. 'stream'
local function tkey(id) return P .. 'task:' .. id end
local function setStatus(id, seq, old, new)
  if old ~= new then
    if old then redis.call('ZREM', P .. 'status:' .. old, id) end
    redis.call('ZADD', P .. 'status:' .. new, seq, id)
    redis.call('HSET', tkey(id), 'status', new)
  end
end
local function addEntry(id)
  local e = redis.call('XADD', STREAM, '*', 'id', id)
  redis.call('HSET', tkey(id), 'entry', e)
end
local function dropEntry(id)
  local e = redis.call('HGET', tkey(id), 'entry')
  if e and e ~= '' then
    redis.call('XACK', STREAM, G, e)
    redis.call('XDEL', STREAM, e)
    redis.call('HSET', tkey(id), 'entry', '')
  end
end
-- queueAt makes a PENDING task claimable at nb (now when "" or passed).
local function queueAt(id, nb, now)
  if nb ~= '' and tonumber(nb) > tonumber(now) then
    redis.call('ZADD', P .. 'delayed', nb, id)
  else
    addEntry(id)
  end
end
-- held returns the task's seq when owner holds it, else raises the
-- error the client maps to ErrNotFound or ErrLeaseLost.
local function held(id, owner)
  local h = redis.call('HMGET', tkey(id), 'status', 'owner', 'seq')
  if not h[1] then return redis.error_reply('NOTFOUND task ' .. id) end
  if h[1] ~= 'RUNNING' or h[2] ~= owner then
    return redis.error_reply('LEASELOST task ' .. id .. ' is ' .. h[1] .. ' (owner ' .. tostring(h[2]) .. ')')
  end
  return h[3]
end
`

// enqueueScript: ARGV P G id spec created notBefore now.
// Returns {added (0/1), HGETALL}.
var enqueueScript = redis.NewScript(prelude + `
local id, spec, created, nb, now = ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7]
local k = tkey(id)
local st = redis.call('HGET', k, 'status')
if st and st ~= 'FAILED' then return {0, redis.call('HGETALL', k)} end
local seq
if st then
  seq = redis.call('HGET', k, 'seq')
else
  seq = redis.call('INCR', P .. 'seq')
  redis.call('HSET', k, 'spec', spec, 'seq', seq, 'created', created, 'entry', '')
  redis.call('ZADD', P .. 'order', seq, id)
end
redis.call('HSET', k, 'error', '', 'attempts', 0, 'bytesIn', 0, 'bytesOut', 0, 'skipped', '',
  'started', '', 'finished', '', 'owner', '', 'leaseUntil', '', 'notBefore', nb)
setStatus(id, seq, st, 'PENDING')
queueAt(id, nb, now)
return {1, redis.call('HGETALL', k)}
`)

// takeScript: ARGV P G id entry owner now leaseUntil. Claims the task of
// a stream entry the caller's consumer was just given, when the entry is
// still the task's and the task is PENDING, or RUNNING with an expired
// lease. Returns HGETALL, or nil when the entry gives nothing to claim
// (a stale entry is acknowledged and deleted).
var takeScript = redis.NewScript(prelude + `
local id, entry, owner, now, lu = ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7]
local k = tkey(id)
local h = redis.call('HMGET', k, 'status', 'entry', 'leaseUntil', 'seq')
if not h[1] or h[2] ~= entry or (h[1] ~= 'PENDING' and h[1] ~= 'RUNNING') then
  redis.call('XACK', STREAM, G, entry)
  redis.call('XDEL', STREAM, entry)
  return nil
end
if h[1] == 'RUNNING' and h[3] ~= '' and tonumber(h[3]) > tonumber(now) then
  return nil
end
redis.call('HSET', k, 'owner', owner, 'started', now, 'leaseUntil', lu)
redis.call('HINCRBY', k, 'attempts', 1)
setStatus(id, h[4], h[1], 'RUNNING')
redis.call('XCLAIM', STREAM, G, owner, 0, entry, 'JUSTID')
return redis.call('HGETALL', k)
`)

// promoteScript: ARGV P G now. Moves the delayed tasks that are due into
// the stream. Returns the NotBefore of the next delayed task, or "".
var promoteScript = redis.NewScript(prelude + `
local now = ARGV[3]
local due = redis.call('ZRANGEBYSCORE', P .. 'delayed', '-inf', now, 'LIMIT', 0, 100)
for _, id in ipairs(due) do
  redis.call('ZREM', P .. 'delayed', id)
  local h = redis.call('HMGET', tkey(id), 'status', 'entry')
  if h[1] == 'PENDING' and (not h[2] or h[2] == '') then addEntry(id) end
end
local next = redis.call('ZRANGE', P .. 'delayed', 0, 0, 'WITHSCORES')
if next[2] then return next[2] end
return ''
`)

// renewScript: ARGV P G id owner leaseUntil.
var renewScript = redis.NewScript(prelude + `
local id, owner, lu = ARGV[3], ARGV[4], ARGV[5]
local seq = held(id, owner)
if type(seq) == 'table' then return seq end
redis.call('HSET', tkey(id), 'leaseUntil', lu)
local e = redis.call('HGET', tkey(id), 'entry')
if e and e ~= '' then
  -- Reset the entry's idle time, which other consumers' XAUTOCLAIM reads.
  redis.call('XCLAIM', STREAM, G, owner, 0, e, 'JUSTID')
end
return 'OK'
`)

// completeScript: ARGV P G id owner now bytesIn bytesOut skipped.
var completeScript = redis.NewScript(prelude + `
local id, owner, now = ARGV[3], ARGV[4], ARGV[5]
local seq = held(id, owner)
if type(seq) == 'table' then return seq end
redis.call('HSET', tkey(id), 'bytesIn', ARGV[6], 'bytesOut', ARGV[7], 'skipped', ARGV[8],
  'error', '', 'finished', now, 'owner', '', 'leaseUntil', '')
dropEntry(id)
setStatus(id, seq, 'RUNNING', 'COMPLETED')
return 'OK'
`)

// failScript: ARGV P G id owner now error retryAt ("" for final).
var failScript = redis.NewScript(prelude + `
local id, owner, now, msg, retry = ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7]
local seq = held(id, owner)
if type(seq) == 'table' then return seq end
local k = tkey(id)
redis.call('HSET', k, 'error', msg, 'owner', '', 'leaseUntil', '')
dropEntry(id)
if retry == '' then
  redis.call('HSET', k, 'finished', now)
  setStatus(id, seq, 'RUNNING', 'FAILED')
else
  redis.call('HSET', k, 'notBefore', retry)
  setStatus(id, seq, 'RUNNING', 'PENDING')
  queueAt(id, retry, now)
end
return 'OK'
`)

// releaseScript: ARGV P G id owner.
var releaseScript = redis.NewScript(prelude + `
local id, owner = ARGV[3], ARGV[4]
local seq = held(id, owner)
if type(seq) == 'table' then return seq end
local k = tkey(id)
redis.call('HSET', k, 'owner', '', 'leaseUntil', '')
if tonumber(redis.call('HGET', k, 'attempts')) > 0 then redis.call('HINCRBY', k, 'attempts', -1) end
dropEntry(id)
setStatus(id, seq, 'RUNNING', 'PENDING')
addEntry(id)
return 'OK'
`)
