// Package queue defines the durable task queue of rafs serve: what a
// conversion task is, the states it goes through, and the operations a
// store of tasks offers to the HTTP front end (Enqueue, List, Counts) and
// to the workers (Claim, Renew, Complete, Fail, Release).
//
// Two stores implement Queue: package boltqueue keeps tasks in a local
// bbolt file (one rafs serve process), package redisqueue in Redis streams
// with a consumer group (several rafs serve replicas sharing the work).
// Package queuetest holds the conformance tests both pass.
//
// A task moves PENDING → RUNNING (claimed by one owner, under a lease) →
// COMPLETED or FAILED, or back to PENDING when its owner fails it with a
// retry time, releases it, or loses its lease (its process died: another
// owner's Claim takes it over once the lease has expired).
package queue

import (
	"context"
	"errors"
	"time"
)

// Status is a task's state.
type Status string

// The states of a task.
const (
	Pending   Status = "PENDING"
	Running   Status = "RUNNING"
	Completed Status = "COMPLETED"
	Failed    Status = "FAILED"
)

// Valid reports whether s is one of the four states.
func (s Status) Valid() bool {
	switch s {
	case Pending, Running, Completed, Failed:
		return true
	}
	return false
}

// Task is one conversion: a source manifest or index, by digest, into one
// target per type. Its ID is derived from what it converts and how (the
// source digest, the targets, the types, the link and the options), so
// the same push notified twice is the same task.
type Task struct {
	// ID identifies the task; Enqueue keeps the first task of an ID.
	ID string `json:"id"`
	// Source is the pushed image, REGISTRY/REPO@DIGEST.
	Source string `json:"source"`
	// SourceTag is the tag the source was pushed under, if any.
	SourceTag string `json:"sourceTag,omitempty"`
	// Targets are the references the converted images are pushed to,
	// one per type, in the order of Types.
	Targets []string `json:"targets"`
	// Types are the conversion types ("nydus", "erofs").
	Types []string `json:"types"`
	// Rule names the rule that made the task.
	Rule string `json:"rule,omitempty"`
	// Link is how targets link to the source: "none" (or empty),
	// "referrer" or "merge-index", as rafs convert's --referrer and
	// --merge-index.
	Link string `json:"link,omitempty"`
	// Options are rafs convert's flags for the conversion (other than
	// --type, --referrer and --merge-index), as the rule gives them.
	Options []string `json:"options,omitempty"`

	Status Status `json:"status"`
	// Error is the last attempt's error (FAILED: the final one).
	Error string `json:"error,omitempty"`
	// Attempts counts the attempts started so far.
	Attempts int `json:"attempts"`
	// BytesIn and BytesOut are the compressed bytes read from the source
	// and written to the targets by the completing attempt.
	BytesIn  int64 `json:"bytesIn"`
	BytesOut int64 `json:"bytesOut"`
	// Skipped says why a COMPLETED task converted nothing (its targets
	// were already converted from the source with the same options, or
	// the source is itself a converted image).
	Skipped string `json:"skipped,omitempty"`

	Created time.Time `json:"created"`
	// Started is when the latest attempt started; Finished when the task
	// reached COMPLETED or FAILED.
	Started  time.Time `json:"started,omitzero"`
	Finished time.Time `json:"finished,omitzero"`
	// NotBefore delays a PENDING task's next attempt (retry backoff).
	NotBefore time.Time `json:"notBefore,omitzero"`

	// Owner is the RUNNING task's claimant; LeaseUntil when another
	// owner may take it over unless renewed.
	Owner      string    `json:"owner,omitempty"`
	LeaseUntil time.Time `json:"leaseUntil,omitzero"`
}

// Result is what a completed attempt reports.
type Result struct {
	BytesIn, BytesOut int64
	// Skipped, when not empty, says why nothing was converted.
	Skipped string
}

// Errors of Queue operations, inspectable with errors.Is.
var (
	// ErrLeaseLost: the task is no longer RUNNING under this owner
	// (its lease expired and another owner claimed it, or it finished).
	// The caller must stop working on it and must not report it again.
	ErrLeaseLost = errors.New("queue: lease lost")
	// ErrNotFound: no task has this ID.
	ErrNotFound = errors.New("queue: task not found")
	// ErrClosed: the queue was closed.
	ErrClosed = errors.New("queue: closed")
)

// Queue is a durable store of tasks shared by the HTTP front end and the
// workers of one or several rafs serve processes. Every method is safe
// for concurrent use. A method that returns nil has made its change
// durable: a crash after it loses nothing.
type Queue interface {
	// Enqueue stores t as PENDING (setting Created when zero) unless a
	// task with its ID exists, in which case it changes nothing and
	// returns that task with added false. A FAILED task of the ID is
	// the exception: it is made PENDING again, with Attempts reset
	// (a new push retries a conversion that failed), and added is true.
	Enqueue(ctx context.Context, t Task) (stored Task, added bool, err error)

	// Claim blocks until a PENDING task whose NotBefore has passed, or a
	// RUNNING task whose lease has expired, can be taken, and returns
	// it RUNNING under owner until now+lease, with Attempts incremented
	// and Started set. Tasks are claimed oldest first. It returns
	// ctx.Err() when ctx is done first.
	Claim(ctx context.Context, owner string, lease time.Duration) (Task, error)

	// Renew extends the lease of a task owner holds to now+lease.
	Renew(ctx context.Context, id, owner string, lease time.Duration) error

	// Complete makes a task owner holds COMPLETED with r.
	Complete(ctx context.Context, id, owner string, r Result) error

	// Fail records cause on a task owner holds. With retryAt zero the
	// task becomes FAILED; otherwise it becomes PENDING again, to be
	// claimed at retryAt or later.
	Fail(ctx context.Context, id, owner string, cause error, retryAt time.Time) error

	// Release makes a task owner holds PENDING again without counting
	// its attempt (a worker shutting down hands it back).
	Release(ctx context.Context, id, owner string) error

	// Get returns the task of an ID, or ErrNotFound.
	Get(ctx context.Context, id string) (Task, error)

	// List returns the tasks in the order they were created, only those
	// of status when it is not empty.
	List(ctx context.Context, status Status) ([]Task, error)

	// Counts returns how many tasks are in each state.
	Counts(ctx context.Context) (map[Status]int, error)

	// Close releases the store; later calls return ErrClosed.
	Close() error
}
