package lz4

import (
	"runtime"
	"syscall"
	"time"
)

// threadCPU returns the CPU time used by the calling OS thread, so that
// benchmarks can report throughput per core even on a busy machine.
func threadCPU() (time.Duration, bool) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(1 /* RUSAGE_THREAD */, &ru); err != nil {
		return 0, false
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), true
}

func lockThread()   { runtime.LockOSThread() }
func unlockThread() { runtime.UnlockOSThread() }
