package pipeline

import (
	"errors"
	"runtime"
	"testing"
	"time"
)

func TestOrderAndBudget(t *testing.T) {
	inFlight, most := 0, 0
	p := New(Config{Workers: 4, Jobs: 64, Budget: 10},
		func(_ int, j int) (int, error) {
			if j%3 == 0 {
				time.Sleep(time.Millisecond)
			}
			return 2 * j, nil
		},
		func(j, r int) (int, error) { return r + j, nil })
	var got []int
	for i := range 200 {
		if err := p.Acquire(3); err != nil {
			t.Fatal(err)
		}
		p.mu.Lock()
		inFlight = p.used
		p.mu.Unlock()
		most = max(most, inFlight)
		if err := p.Submit(i, 3); err != nil {
			t.Fatal(err)
		}
		got = p.Take(got)
		if i == 100 {
			if err := p.Flush(); err != nil {
				t.Fatal(err)
			}
			if got = p.Take(got); len(got) != 101 {
				t.Fatalf("after Flush: %d outputs, want 101", len(got))
			}
		}
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	got = p.Take(got)
	if len(got) != 200 {
		t.Fatalf("%d outputs, want 200", len(got))
	}
	for i, o := range got {
		if o != 3*i {
			t.Fatalf("output %d is %d, want %d", i, o, 3*i)
		}
	}
	if most > 10 {
		t.Errorf("%d bytes in flight, budget 10", most)
	}
}

func TestFirstErrorWins(t *testing.T) {
	boom := errors.New("boom")
	before := runtime.NumGoroutine()
	sunk := 0
	p := New(Config{Workers: 2},
		func(_ int, j int) (int, error) {
			if j == 5 {
				return 0, boom
			}
			return j, nil
		},
		func(j, r int) (int, error) {
			sunk++
			if j == 7 {
				return 0, errors.New("later")
			}
			return r, nil
		})
	var err error
	for i := 0; i < 1000 && err == nil; i++ {
		err = p.Submit(i, 0)
	}
	if cerr := p.Close(); !errors.Is(cerr, boom) {
		t.Fatalf("Close: %v, want boom", cerr)
	}
	if err != nil && !errors.Is(err, boom) {
		t.Fatalf("Submit: %v, want boom", err)
	}
	if sunk != 5 {
		t.Errorf("sink saw %d jobs, want the 5 before the failing one", sunk)
	}
	if err := p.Acquire(1); !errors.Is(err, boom) {
		t.Errorf("Acquire after failure: %v", err)
	}
	time.Sleep(10 * time.Millisecond)
	if n := runtime.NumGoroutine(); n > before {
		t.Errorf("%d goroutines after Close, %d before", n, before)
	}
}

func TestFailCancels(t *testing.T) {
	stop := errors.New("stopped")
	p := New(Config{Workers: 1, Jobs: 2},
		func(_ int, j int) (int, error) { return j, nil },
		func(j, r int) (int, error) { return r, nil })
	p.Fail(stop)
	if err := p.Submit(1, 0); !errors.Is(err, stop) {
		t.Fatalf("Submit after Fail: %v", err)
	}
	if err := p.Flush(); !errors.Is(err, stop) {
		t.Fatalf("Flush after Fail: %v", err)
	}
	if err := p.Close(); !errors.Is(err, stop) {
		t.Fatalf("Close after Fail: %v", err)
	}
	if err := p.Close(); !errors.Is(err, stop) {
		t.Fatalf("second Close: %v", err)
	}
}
