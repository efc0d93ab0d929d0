// Package pipeline runs jobs on a pool of workers and hands their results
// to one sink in the order the jobs were submitted, so that what the sink
// writes does not depend on the number of workers. It is the one job
// pipeline of the module: the EROFS writer compresses file segments
// through it and the Nydus blob writer hashes and compresses chunks.
//
// Ownership moves with a job: the submitter fills it, one worker turns it
// into a result, then the sink consumes both on a goroutine of its own.
// The sink keeps its state in values it owns (typically captured by its
// function); what it makes of each job comes back to the submitter as a
// value, through Take, Flush and Close. So no goroutine writes memory that
// another one owns.
//
// Back-pressure comes from two bounds: the number of jobs in flight
// (submitted and not yet through the sink) and, optionally, the bytes they
// hold. The first error, from a worker, the sink or Fail, wins: later jobs
// are dropped unseen by the sink, waiting submitters return it, and Close
// reports it after every goroutine has ended.
package pipeline

import (
	"runtime"
	"sync"
	"sync/atomic"
)

// Config sizes a Pipeline.
type Config struct {
	// Workers is the number of worker goroutines; 0 means GOMAXPROCS.
	Workers int
	// Jobs is the most jobs in flight; 0 means four per worker.
	Jobs int
	// Budget is the most bytes in flight, as counted by Acquire; 0 means
	// no limit. A job larger than the budget still goes through, alone.
	Budget int
}

// WorkFunc turns a job into a result on worker number worker (0 to
// Workers-1), so that workers can keep per-worker state in a slice.
type WorkFunc[J, R any] func(worker int, job J) (R, error)

// SinkFunc consumes a job and its result, in submission order, on the
// sink goroutine, and returns the value handed back to the submitter.
type SinkFunc[J, R, O any] func(job J, res R) (O, error)

// Pipeline is a running pipeline: jobs J, results R, outputs O. Submit,
// Acquire, Release, Take, Flush, Fail and Close are for one submitting
// goroutine.
type Pipeline[J, R, O any] struct {
	work WorkFunc[J, R]
	sink SinkFunc[J, R, O]

	free     chan *slot[J, R] // recycled slots; nil entries are made on demand
	queue    chan *slot[J, R] // to the workers
	order    chan *slot[J, R] // to the sink, in submission order
	workers  sync.WaitGroup
	sinkDone chan struct{}
	closed   bool
	failed   atomic.Bool // err is set

	mu     sync.Mutex
	cond   sync.Cond
	budget int
	used   int   // bytes in flight
	queued int64 // jobs submitted
	sunk   int64 // jobs through the sink (or dropped after an error)
	err    error
	out    []O // outputs not taken yet
}

// slot carries one job through the pipeline.
type slot[J, R any] struct {
	job  J
	res  R
	err  error
	size int
	done chan struct{} // a worker has finished with the slot
}

// New starts a pipeline of cfg.Workers workers running work and a sink
// goroutine running sink.
func New[J, R, O any](cfg Config, work WorkFunc[J, R], sink SinkFunc[J, R, O]) *Pipeline[J, R, O] {
	workers := cfg.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	jobs := cfg.Jobs
	if jobs <= 0 {
		jobs = 4 * workers
	}
	p := &Pipeline[J, R, O]{
		work:     work,
		sink:     sink,
		free:     make(chan *slot[J, R], jobs),
		queue:    make(chan *slot[J, R], jobs),
		order:    make(chan *slot[J, R], jobs),
		sinkDone: make(chan struct{}),
		budget:   cfg.Budget,
	}
	p.cond.L = &p.mu
	for range jobs {
		p.free <- nil
	}
	p.workers.Add(workers)
	for i := range workers {
		go p.runWorker(i)
	}
	go p.runSink()
	return p
}

func (p *Pipeline[J, R, O]) runWorker(i int) {
	defer p.workers.Done()
	for s := range p.queue {
		if !p.failed.Load() {
			s.res, s.err = p.work(i, s.job)
		}
		s.done <- struct{}{}
	}
}

func (p *Pipeline[J, R, O]) runSink() {
	defer close(p.sinkDone)
	var zeroJ J
	var zeroR R
	for s := range p.order {
		<-s.done
		if s.err != nil {
			p.Fail(s.err)
		}
		var o O
		ok := false
		if !p.failed.Load() {
			var err error
			if o, err = p.sink(s.job, s.res); err != nil {
				p.Fail(err)
			} else {
				ok = true
			}
		}
		p.mu.Lock()
		if ok {
			p.out = append(p.out, o)
		}
		p.used -= s.size
		p.sunk++
		p.mu.Unlock()
		p.cond.Broadcast()
		s.job, s.res, s.err = zeroJ, zeroR, nil
		p.free <- s
	}
}

// Fail records err as the pipeline's error unless it already has one;
// jobs not yet through the sink are then dropped.
func (p *Pipeline[J, R, O]) Fail(err error) {
	p.mu.Lock()
	if p.err == nil {
		p.err = err
		p.failed.Store(true)
	}
	p.mu.Unlock()
	p.cond.Broadcast()
}

// Err returns the first error.
func (p *Pipeline[J, R, O]) Err() error {
	if !p.failed.Load() {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}

// Acquire waits until n more bytes may be in flight and counts them,
// unless the pipeline has failed: then it returns the error. The bytes
// are given back by Release, or when the job submitted with them has
// been through the sink.
func (p *Pipeline[J, R, O]) Acquire(n int) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	for p.budget > 0 && p.used > 0 && p.used+n > p.budget && p.err == nil {
		p.cond.Wait()
	}
	if p.err != nil {
		return p.err
	}
	p.used += n
	return nil
}

// Release gives back n bytes counted by Acquire that no job took.
func (p *Pipeline[J, R, O]) Release(n int) {
	p.mu.Lock()
	p.used -= n
	p.mu.Unlock()
	p.cond.Broadcast()
}

// Submit queues job, which holds size bytes counted by Acquire (0 if
// none), waiting while the most jobs are in flight. It returns the
// pipeline's error, if any, instead of queueing; the size bytes are then
// given back. It must not be called after Close.
func (p *Pipeline[J, R, O]) Submit(job J, size int) error {
	s := <-p.free
	if err := p.Err(); err != nil {
		p.free <- s
		p.Release(size)
		return err
	}
	if s == nil {
		s = &slot[J, R]{done: make(chan struct{}, 1)}
	}
	s.job, s.size = job, size
	p.mu.Lock()
	p.queued++
	p.mu.Unlock()
	p.order <- s
	p.queue <- s
	return nil
}

// Take appends the outputs of the sink not taken yet to dst and returns
// it, in submission order. It does not wait.
func (p *Pipeline[J, R, O]) Take(dst []O) []O {
	p.mu.Lock()
	dst = append(dst, p.out...)
	clear(p.out)
	p.out = p.out[:0]
	p.mu.Unlock()
	return dst
}

// Flush waits until every job submitted has been through the sink, or
// the pipeline has failed, and returns the first error. The sink is idle
// when it returns nil.
func (p *Pipeline[J, R, O]) Flush() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	for p.sunk < p.queued && p.err == nil {
		p.cond.Wait()
	}
	return p.err
}

// Close waits for the jobs in flight (dropped without reaching the sink
// if the pipeline has failed), ends the goroutines and returns the first
// error. Outputs not taken yet are left for Take. Calling Close again
// returns the error again.
func (p *Pipeline[J, R, O]) Close() error {
	if !p.closed {
		p.closed = true
		close(p.queue)
		close(p.order)
		p.workers.Wait()
		<-p.sinkDone
	}
	return p.Err()
}
