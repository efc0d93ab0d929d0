// Package redisqueue is rafs serve's shared task store: a queue.Queue kept
// in Redis, so that several rafs serve replicas share the work, each task
// converted by one of them at a time.
//
// Each task is a hash holding its fields. A task that can be claimed has
// an entry (its ID) in a stream read by one consumer group: Claim reads
// new entries with XREADGROUP (blocking), and takes over the entries of
// a dead owner with XAUTOCLAIM once they have been idle for the lease;
// Renew resets its entry's idle time with XCLAIM. A task failed with a
// retry time waits in a sorted set and is moved into the stream when due.
// Every change of a task is one Lua script, atomic on the server, that
// checks the caller still owns the task (fencing: a stale owner gets
// queue.ErrLeaseLost and changes nothing), and finishing a task
// acknowledges and deletes its entry (XACK, XDEL), so the stream holds
// only open tasks.
//
// A claimer takes over an entry once it has been idle (not renewed) for
// the claimer's own lease and the task's lease has expired, so replicas
// should use the same lease: one with a longer lease takes over later.
// Times (leases, retry times) come from the clocks of the rafs serve
// processes, which must agree to well within a lease (NTP does).
//
// Durability is the Redis server's: a method returning nil means the
// server applied the change, which survives a crash of the server only as
// its persistence setting says. For rafs serve's promise (a notification
// is answered 2xx only once its task is stored), run Redis with the
// append-only file fsynced before each reply: appendonly yes, appendfsync
// always. With appendfsync everysec (Redis's default) a crash of the Redis
// process or its machine can lose about the last two seconds of changes
// (Redis delays writing the file while an fsync is slow), and without the
// append-only file everything since the last snapshot. A crash of a rafs
// serve process loses nothing: its RUNNING tasks are claimed by another
// replica once their lease expires.
//
// The store needs one Redis server (7.0 or later: XAUTOCLAIM), not a
// cluster; its keys all start with "{PREFIX}:".
package redisqueue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/rafs-dev/rafs/convert/serve/queue"
)

// Defaults of Options.
const (
	DefaultPrefix = "rafs"
	DefaultGroup  = "rafs"
)

// maxBlock bounds one blocking read of Claim, so that it notices expired
// leases, due retries and a cancelled context in time.
const maxBlock = 500 * time.Millisecond

// Options tunes Open. The zero value works.
type Options struct {
	// Prefix names the store: its keys are "{Prefix}:...". Stores of
	// different prefixes in one database are independent. Default
	// DefaultPrefix.
	Prefix string
	// Group is the stream's consumer group. Default DefaultGroup.
	Group string
}

// Queue is a queue.Queue in Redis. Its methods are safe for concurrent
// use; several processes may open the same store.
type Queue struct {
	client *redis.Client
	keys   string // "{prefix}:"
	group  string
	closed atomic.Bool
}

var _ queue.Queue = (*Queue)(nil)

// Open connects to the Redis server of url (redis://[USER:PASSWORD@]HOST:PORT/DB,
// or rediss:// for TLS, as go-redis's ParseURL reads it), checks it
// answers, and creates the store's stream and consumer group when
// missing. opts may be nil.
func Open(ctx context.Context, url string, opts *Options) (*Queue, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.Prefix == "" {
		o.Prefix = DefaultPrefix
	}
	if o.Group == "" {
		o.Group = DefaultGroup
	}
	if strings.ContainsAny(o.Prefix, "{}") {
		return nil, fmt.Errorf("redisqueue: prefix %q contains a brace", o.Prefix)
	}
	ro, err := redis.ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("redisqueue: %w", err)
	}
	q := &Queue{
		client: redis.NewClient(ro),
		keys:   "{" + o.Prefix + "}:",
		group:  o.Group,
	}
	if err := q.client.Ping(ctx).Err(); err != nil {
		q.client.Close()
		return nil, fmt.Errorf("redisqueue: connecting to %s: %w", ro.Addr, err)
	}
	if err := q.createGroup(ctx); err != nil {
		q.client.Close()
		return nil, err
	}
	if err := q.pruneConsumers(ctx); err != nil {
		q.client.Close()
		return nil, err
	}
	return q, nil
}

// createGroup creates the stream and its consumer group unless they
// exist.
func (q *Queue) createGroup(ctx context.Context) error {
	err := q.client.XGroupCreateMkStream(ctx, q.stream(), q.group, "0").Err()
	if err != nil && !strings.HasPrefix(err.Error(), "BUSYGROUP") {
		return fmt.Errorf("redisqueue: creating consumer group %s of %s: %w", q.group, q.stream(), err)
	}
	return nil
}

// consumerIdle is how long a consumer (one per owner name) must have been
// idle, holding no entry, before Open deletes it from the group.
const consumerIdle = time.Hour

// pruneConsumers deletes the group's consumers that hold no entry and
// have been idle for consumerIdle: the owners of processes gone, which
// would otherwise pile up, one per replica start. A live owner's next
// read creates its consumer again.
func (q *Queue) pruneConsumers(ctx context.Context) error {
	cons, err := q.client.XInfoConsumers(ctx, q.stream(), q.group).Result()
	if err != nil {
		return fmt.Errorf("redisqueue: listing the consumers of %s: %w", q.stream(), err)
	}
	for _, c := range cons {
		if c.Pending == 0 && c.Idle >= consumerIdle {
			if err := q.client.XGroupDelConsumer(ctx, q.stream(), q.group, c.Name).Err(); err != nil {
				return fmt.Errorf("redisqueue: deleting idle consumer %q of %s: %w", c.Name, q.stream(), err)
			}
		}
	}
	return nil
}

func (q *Queue) stream() string { return q.keys + "stream" }

// Close closes the connections; later calls return queue.ErrClosed and
// blocked Claims return it.
func (q *Queue) Close() error {
	if q.closed.Swap(true) {
		return queue.ErrClosed
	}
	if err := q.client.Close(); err != nil {
		return fmt.Errorf("redisqueue: closing: %w", err)
	}
	return nil
}

// wrap gives err the store's context, mapping the scripts' errors and a
// closed client to the queue package's.
func (q *Queue) wrap(op, id string, err error) error {
	if err == nil {
		return nil
	}
	if q.closed.Load() || errors.Is(err, redis.ErrClosed) {
		return fmt.Errorf("redisqueue: %s %q: %w", op, id, queue.ErrClosed)
	}
	msg := err.Error()
	switch {
	case strings.HasPrefix(msg, "NOTFOUND"):
		err = fmt.Errorf("%s: %w", msg, queue.ErrNotFound)
	case strings.HasPrefix(msg, "LEASELOST"):
		err = fmt.Errorf("%s: %w", msg, queue.ErrLeaseLost)
	}
	return fmt.Errorf("redisqueue: %s %q: %w", op, id, err)
}

func (q *Queue) check(ctx context.Context) error {
	if q.closed.Load() {
		return queue.ErrClosed
	}
	return ctx.Err()
}

// args starts a script's arguments with the key prefix and the group.
func (q *Queue) args(more ...any) []any {
	return append([]any{q.keys, q.group}, more...)
}

// spec is the part of a task Enqueue stores as given, as JSON in the
// task's hash.
type spec struct {
	Source    string   `json:"source"`
	SourceTag string   `json:"sourceTag,omitempty"`
	Targets   []string `json:"targets"`
	Types     []string `json:"types"`
	Rule      string   `json:"rule,omitempty"`
	Link      string   `json:"link,omitempty"`
	Options   []string `json:"options,omitempty"`
}

// Times are stored as Unix nanoseconds, which reach from 1678 to 2262.
var (
	minTime = time.Unix(0, -1<<63+1)
	maxTime = time.Unix(0, 1<<63-1)
)

func encTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return strconv.FormatInt(t.UnixNano(), 10)
}

func decTime(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return time.Time{}, err
	}
	return time.Unix(0, n).UTC(), nil
}

func checkTime(name string, t time.Time) error {
	if !t.IsZero() && (t.Before(minTime) || t.After(maxTime)) {
		return fmt.Errorf("%s %v out of the storable range (years 1678 to 2262)", name, t)
	}
	return nil
}

// decode makes a task of a hash's HGETALL reply (a flat list of fields
// and values).
func decode(id string, reply any) (queue.Task, error) {
	list, ok := reply.([]any)
	if !ok || len(list)%2 != 0 {
		return queue.Task{}, fmt.Errorf("task %q: unexpected reply %T", id, reply)
	}
	h := make(map[string]string, len(list)/2)
	for i := 0; i < len(list); i += 2 {
		k, _ := list[i].(string)
		v, _ := list[i+1].(string)
		h[k] = v
	}
	return decodeMap(id, h)
}

func decodeMap(id string, h map[string]string) (queue.Task, error) {
	if len(h) == 0 {
		return queue.Task{}, fmt.Errorf("task %q: %w", id, queue.ErrNotFound)
	}
	var s spec
	if err := json.Unmarshal([]byte(h["spec"]), &s); err != nil {
		return queue.Task{}, fmt.Errorf("task %q: decoding its spec: %w", id, err)
	}
	t := queue.Task{
		ID: id, Source: s.Source, SourceTag: s.SourceTag, Targets: s.Targets, Types: s.Types,
		Rule: s.Rule, Link: s.Link, Options: s.Options,
		Status: queue.Status(h["status"]), Error: h["error"], Skipped: h["skipped"], Owner: h["owner"],
	}
	if !t.Status.Valid() {
		return queue.Task{}, fmt.Errorf("task %q: unknown status %q", id, t.Status)
	}
	var err error
	ints := []struct {
		name string
		dst  *int64
	}{{"bytesIn", &t.BytesIn}, {"bytesOut", &t.BytesOut}}
	for _, f := range ints {
		if *f.dst, err = strconv.ParseInt(h[f.name], 10, 64); err != nil {
			return queue.Task{}, fmt.Errorf("task %q: field %s: %w", id, f.name, err)
		}
	}
	if t.Attempts, err = strconv.Atoi(h["attempts"]); err != nil {
		return queue.Task{}, fmt.Errorf("task %q: field attempts: %w", id, err)
	}
	times := []struct {
		name string
		dst  *time.Time
	}{{"created", &t.Created}, {"started", &t.Started}, {"finished", &t.Finished},
		{"notBefore", &t.NotBefore}, {"leaseUntil", &t.LeaseUntil}}
	for _, f := range times {
		if *f.dst, err = decTime(h[f.name]); err != nil {
			return queue.Task{}, fmt.Errorf("task %q: field %s: %w", id, f.name, err)
		}
	}
	return t, nil
}

// Enqueue implements queue.Queue.
func (q *Queue) Enqueue(ctx context.Context, t queue.Task) (queue.Task, bool, error) {
	if t.ID == "" {
		return queue.Task{}, false, errors.New("redisqueue: enqueue: task without an ID")
	}
	if err := q.check(ctx); err != nil {
		return queue.Task{}, false, q.wrap("enqueue", t.ID, err)
	}
	if t.Created.IsZero() {
		t.Created = time.Now()
	}
	for _, c := range []struct {
		name string
		t    time.Time
	}{{"Created", t.Created}, {"NotBefore", t.NotBefore}} {
		if err := checkTime(c.name, c.t); err != nil {
			return queue.Task{}, false, fmt.Errorf("redisqueue: enqueue %q: %w", t.ID, err)
		}
	}
	sp, err := json.Marshal(spec{t.Source, t.SourceTag, t.Targets, t.Types, t.Rule, t.Link, t.Options})
	if err != nil {
		return queue.Task{}, false, fmt.Errorf("redisqueue: enqueue %q: %w", t.ID, err)
	}
	reply, err := enqueueScript.Run(ctx, q.client, nil,
		q.args(t.ID, sp, encTime(t.Created), encTime(t.NotBefore), encTime(time.Now()))...).Slice()
	if err != nil {
		return queue.Task{}, false, q.wrap("enqueue", t.ID, err)
	}
	if len(reply) != 2 {
		return queue.Task{}, false, fmt.Errorf("redisqueue: enqueue %q: %d-element reply", t.ID, len(reply))
	}
	stored, err := decode(t.ID, reply[1])
	if err != nil {
		return queue.Task{}, false, fmt.Errorf("redisqueue: enqueue: %w", err)
	}
	return stored, reply[0] == int64(1), nil
}

// Claim implements queue.Queue. It moves the due delayed tasks into the
// stream, takes over an entry idle for lease whose task's lease has
// expired (XAUTOCLAIM), else reads a new one (XREADGROUP), blocking for
// at most half a second (or a quarter of lease) at a time. Oldest first
// is the stream's order: a task released or retried queues again behind
// those already queued.
func (q *Queue) Claim(ctx context.Context, owner string, lease time.Duration) (queue.Task, error) {
	if owner == "" || lease < time.Millisecond {
		return queue.Task{}, fmt.Errorf("redisqueue: claim: owner %q and lease %v (want a name and a lease of 1ms or more)", owner, lease)
	}
	for {
		if err := q.check(ctx); err != nil {
			return queue.Task{}, q.wrap("claim", owner, err)
		}
		t, ok, next, err := q.claimOnce(ctx, owner, lease)
		if streamLost(err) {
			// The stream is gone (deleted, or a server restarted
			// without persistence): make it again and go on.
			err = q.createGroup(ctx)
		}
		if err != nil {
			if ctx.Err() != nil && !q.closed.Load() {
				return queue.Task{}, ctx.Err()
			}
			return queue.Task{}, q.wrap("claim", owner, err)
		}
		if ok {
			return t, nil
		}
		// Nothing now: wait for a new entry, blocking no longer than
		// until the next due retry, the context's deadline, or a
		// fraction of the lease (expiries are found by polling).
		block := min(maxBlock, max(lease/4, 10*time.Millisecond))
		if !next.IsZero() {
			block = min(block, max(time.Until(next), time.Millisecond))
		}
		if dl, ok := ctx.Deadline(); ok {
			block = min(block, max(time.Until(dl), time.Millisecond))
		}
		t, ok, err = q.readNew(ctx, owner, lease, block)
		if streamLost(err) {
			err = q.createGroup(ctx)
		}
		if err != nil {
			if ctx.Err() != nil && !q.closed.Load() {
				return queue.Task{}, ctx.Err()
			}
			return queue.Task{}, q.wrap("claim", owner, err)
		}
		if ok {
			return t, nil
		}
	}
}

// streamLost reports whether err says the stream or its group is gone
// (NOGROUP), or was deleted under a blocked read (UNBLOCKED).
func streamLost(err error) bool {
	return err != nil && (strings.Contains(err.Error(), "NOGROUP") || strings.Contains(err.Error(), "UNBLOCKED"))
}

// claimOnce promotes due retries, then tries the expired leases and the
// new entries without blocking. It returns the next retry time when it
// claims nothing.
func (q *Queue) claimOnce(ctx context.Context, owner string, lease time.Duration) (queue.Task, bool, time.Time, error) {
	nextS, err := promoteScript.Run(ctx, q.client, nil, q.args(encTime(time.Now()))...).Text()
	if err != nil {
		return queue.Task{}, false, time.Time{}, fmt.Errorf("moving due retries: %w", err)
	}
	var next time.Time
	if nextS != "" {
		f, err := strconv.ParseFloat(nextS, 64)
		if err != nil {
			return queue.Task{}, false, time.Time{}, fmt.Errorf("next retry time %q: %w", nextS, err)
		}
		next = time.Unix(0, int64(f))
	}
	// Entries idle for a lease: their claimant died, or stopped renewing.
	cursor := "0-0"
	for range 100 {
		msgs, cur, err := q.client.XAutoClaim(ctx, &redis.XAutoClaimArgs{
			Stream: q.stream(), Group: q.group, Consumer: owner, MinIdle: lease, Start: cursor, Count: 1,
		}).Result()
		if err != nil {
			return queue.Task{}, false, next, fmt.Errorf("XAUTOCLAIM: %w", err)
		}
		for _, m := range msgs {
			t, ok, err := q.take(ctx, m, owner, lease)
			if err != nil || ok {
				return t, ok, next, err
			}
		}
		if cur == "0-0" || cur == "" {
			break
		}
		cursor = cur
	}
	t, ok, err := q.readNew(ctx, owner, lease, -1)
	return t, ok, next, err
}

// readNew reads one new entry for owner, blocking up to block (not at
// all when block is negative), and takes its task.
func (q *Queue) readNew(ctx context.Context, owner string, lease, block time.Duration) (queue.Task, bool, error) {
	args := &redis.XReadGroupArgs{
		Group: q.group, Consumer: owner, Streams: []string{q.stream(), ">"}, Count: 1, Block: block,
	}
	if block < 0 {
		args.Block = -1 // no BLOCK argument
	}
	res, err := q.client.XReadGroup(ctx, args).Result()
	if errors.Is(err, redis.Nil) {
		return queue.Task{}, false, nil
	}
	if err != nil {
		return queue.Task{}, false, fmt.Errorf("XREADGROUP: %w", err)
	}
	for _, s := range res {
		for _, m := range s.Messages {
			t, ok, err := q.take(ctx, m, owner, lease)
			if err != nil || ok {
				return t, ok, err
			}
		}
	}
	return queue.Task{}, false, nil
}

// take claims the task of stream entry m, which owner's consumer holds.
func (q *Queue) take(ctx context.Context, m redis.XMessage, owner string, lease time.Duration) (queue.Task, bool, error) {
	id, _ := m.Values["id"].(string)
	now := time.Now()
	reply, err := takeScript.Run(ctx, q.client, nil,
		q.args(id, m.ID, owner, encTime(now), encTime(now.Add(lease)))...).Result()
	if errors.Is(err, redis.Nil) {
		return queue.Task{}, false, nil
	}
	if err != nil {
		return queue.Task{}, false, fmt.Errorf("taking task %q of entry %s: %w", id, m.ID, err)
	}
	t, err := decode(id, reply)
	if err != nil {
		return queue.Task{}, false, err
	}
	return t, true, nil
}

// Renew implements queue.Queue.
func (q *Queue) Renew(ctx context.Context, id, owner string, lease time.Duration) error {
	if lease < time.Millisecond {
		return fmt.Errorf("redisqueue: renew %q: lease %v is under 1ms", id, lease)
	}
	if err := q.check(ctx); err != nil {
		return q.wrap("renew", id, err)
	}
	err := renewScript.Run(ctx, q.client, nil, q.args(id, owner, encTime(time.Now().Add(lease)))...).Err()
	return q.wrap("renew", id, err)
}

// Complete implements queue.Queue.
func (q *Queue) Complete(ctx context.Context, id, owner string, r queue.Result) error {
	if err := q.check(ctx); err != nil {
		return q.wrap("complete", id, err)
	}
	err := completeScript.Run(ctx, q.client, nil,
		q.args(id, owner, encTime(time.Now()), r.BytesIn, r.BytesOut, r.Skipped)...).Err()
	return q.wrap("complete", id, err)
}

// Fail implements queue.Queue.
func (q *Queue) Fail(ctx context.Context, id, owner string, cause error, retryAt time.Time) error {
	if err := checkTime("retry time", retryAt); err != nil {
		return fmt.Errorf("redisqueue: fail %q: %w", id, err)
	}
	if err := q.check(ctx); err != nil {
		return q.wrap("fail", id, err)
	}
	msg := "unknown error"
	if cause != nil {
		msg = cause.Error()
	}
	err := failScript.Run(ctx, q.client, nil,
		q.args(id, owner, encTime(time.Now()), msg, encTime(retryAt))...).Err()
	return q.wrap("fail", id, err)
}

// Release implements queue.Queue. The task queues again at the stream's
// end.
func (q *Queue) Release(ctx context.Context, id, owner string) error {
	if err := q.check(ctx); err != nil {
		return q.wrap("release", id, err)
	}
	err := releaseScript.Run(ctx, q.client, nil, q.args(id, owner)...).Err()
	return q.wrap("release", id, err)
}

// Get implements queue.Queue.
func (q *Queue) Get(ctx context.Context, id string) (queue.Task, error) {
	if err := q.check(ctx); err != nil {
		return queue.Task{}, q.wrap("get", id, err)
	}
	h, err := q.client.HGetAll(ctx, q.keys+"task:"+id).Result()
	if err != nil {
		return queue.Task{}, q.wrap("get", id, err)
	}
	t, err := decodeMap(id, h)
	if err != nil {
		return queue.Task{}, fmt.Errorf("redisqueue: get: %w", err)
	}
	return t, nil
}

// List implements queue.Queue. It reads the IDs from the creation-ordered
// set of all tasks or of the status, then the tasks in one pipeline; a
// task that changes state meanwhile is listed as it is then.
func (q *Queue) List(ctx context.Context, status queue.Status) ([]queue.Task, error) {
	if status != "" && !status.Valid() {
		return nil, fmt.Errorf("redisqueue: list: unknown status %q", status)
	}
	if err := q.check(ctx); err != nil {
		return nil, q.wrap("list", string(status), err)
	}
	set := q.keys + "order"
	if status != "" {
		set = q.keys + "status:" + string(status)
	}
	ids, err := q.client.ZRange(ctx, set, 0, -1).Result()
	if err != nil {
		return nil, q.wrap("list", string(status), err)
	}
	cmds := make([]*redis.MapStringStringCmd, len(ids))
	if len(ids) > 0 {
		_, err = q.client.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i, id := range ids {
				cmds[i] = p.HGetAll(ctx, q.keys+"task:"+id)
			}
			return nil
		})
		if err != nil {
			return nil, q.wrap("list", string(status), err)
		}
	}
	list := make([]queue.Task, 0, len(ids))
	for i, id := range ids {
		t, err := decodeMap(id, cmds[i].Val())
		if errors.Is(err, queue.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("redisqueue: list: %w", err)
		}
		if status == "" || t.Status == status {
			list = append(list, t)
		}
	}
	return list, nil
}

// Counts implements queue.Queue.
func (q *Queue) Counts(ctx context.Context) (map[queue.Status]int, error) {
	if err := q.check(ctx); err != nil {
		return nil, q.wrap("counts", "", err)
	}
	all := []queue.Status{queue.Pending, queue.Running, queue.Completed, queue.Failed}
	cmds := make([]*redis.IntCmd, len(all))
	_, err := q.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, s := range all {
			cmds[i] = p.ZCard(ctx, q.keys+"status:"+string(s))
		}
		return nil
	})
	if err != nil {
		return nil, q.wrap("counts", "", err)
	}
	counts := make(map[queue.Status]int, len(all))
	for i, s := range all {
		counts[s] = int(cmds[i].Val())
	}
	return counts, nil
}

// ErrNotDurable is wrapped by CheckDurability's error when the server's
// persistence setting can lose acknowledged changes in a crash.
var ErrNotDurable = errors.New("redisqueue: Redis may lose acknowledged changes in a crash")

// CheckDurability reads the server's persistence setting (CONFIG GET) and
// returns nil when it keeps every acknowledged change across a crash
// (appendonly yes, appendfsync always), else an error saying what is
// missing, wrapping ErrNotDurable, or the error of CONFIG GET (which some
// managed services refuse). rafs serve logs it as a warning at start.
func (q *Queue) CheckDurability(ctx context.Context) error {
	if err := q.check(ctx); err != nil {
		return q.wrap("check durability", "", err)
	}
	cfg := map[string]string{}
	for _, k := range []string{"appendonly", "appendfsync"} {
		m, err := q.client.ConfigGet(ctx, k).Result()
		if err != nil {
			return q.wrap("check durability", k, err)
		}
		cfg[k] = m[k]
	}
	switch {
	case cfg["appendonly"] != "yes":
		return fmt.Errorf("%w: appendonly is %q (only snapshots: changes since the last one are lost); set appendonly yes and appendfsync always", ErrNotDurable, cfg["appendonly"])
	case cfg["appendfsync"] != "always":
		return fmt.Errorf("%w: appendfsync is %q (the last seconds of changes can be lost); set appendfsync always", ErrNotDurable, cfg["appendfsync"])
	}
	return nil
}
