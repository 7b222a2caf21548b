package wasmguard

import (
	"sync/atomic"
	"time"
)

type counters struct {
	calls, allowed, denied, dropped                atomic.Uint64
	failures, traps, fuel, depth, timeouts         atomic.Uint64
	memoryLimit, badVerdicts, badBuffers, tooLarge atomic.Uint64
	instantiateErrors, quarantined, skipped, waits atomic.Uint64
	created, replaced, recycled, memoryLimitHits   atomic.Uint64
	logLines, logDropped, logRejected, peakMemory  atomic.Uint64
	logBytes                                       atomic.Uint64
}

// Stats are a plugin's counters since Load.
type Stats struct {
	Calls                    uint64 // calls that ran the plugin
	Allowed, Denied, Dropped uint64 // verdicts the plugin gave
	Failures                 uint64 // calls the failure policy decided, all kinds below
	Traps                    uint64 // the plugin trapped (panic, unreachable, proc_exit, bad log pointer)
	FuelExhausted            uint64 // ran out of fuel: the CPU bound
	CallDepthExceeded        uint64 // recursed past MaxCallDepth
	Timeouts                 uint64 // ran past Timeout
	MemoryLimit              uint64 // failed at the memory limit (a Go guest's "out of memory")
	BadVerdicts              uint64 // returned a malformed verdict
	BadBuffers               uint64 // gave an event buffer outside its memory
	TooLarge                 uint64 // events over MaxEventBytes (not shown to the plugin)
	InstantiateErrors        uint64 // instances that could not be created
	Quarantined              uint64 // calls refused while the breaker was open
	Quarantines              uint64 // times the breaker opened
	Skipped                  uint64 // calls while disabled
	Waits                    uint64 // calls that found every instance busy and waited
	InstancesCreated         uint64
	InstancesReplaced        uint64 // closed after a failure
	InstancesRecycled        uint64 // closed after RecycleAfter calls or past RecycleMemoryBytes
	MemoryLimitHits          uint64 // instances closed with their memory at MaxMemoryBytes
	LogLines, LogDropped     uint64 // log calls delivered, and dropped by the rate limit or MaxLogBytesPerCall
	LogBytes                 uint64 // bytes the log calls delivered (each line cut to 512)
	LogRejected              uint64 // log calls with a pointer outside memory (each trapped)
	PeakMemoryBytes          uint64 // the largest linear memory any instance reached
	Instances                []InstanceStats
	Disabled                 bool
	QuarantinedUntil         time.Time // zero when the breaker is closed
}

// InstanceStats describe one live instance.
type InstanceStats struct {
	Calls           uint64
	MemoryBytes     uint64 // linear memory now
	PeakMemoryBytes uint64
}

// Stats returns a snapshot of the counters.
func (p *Plugin) Stats() Stats {
	c := &p.stats
	s := Stats{
		Calls: c.calls.Load(), Allowed: c.allowed.Load(), Denied: c.denied.Load(), Dropped: c.dropped.Load(),
		Failures: c.failures.Load(), Traps: c.traps.Load(), FuelExhausted: c.fuel.Load(),
		CallDepthExceeded: c.depth.Load(), Timeouts: c.timeouts.Load(), MemoryLimit: c.memoryLimit.Load(),
		BadVerdicts: c.badVerdicts.Load(), BadBuffers: c.badBuffers.Load(), TooLarge: c.tooLarge.Load(),
		InstantiateErrors: c.instantiateErrors.Load(), Quarantined: c.quarantined.Load(),
		Quarantines: p.breaker.trips.Load(), Skipped: c.skipped.Load(), Waits: c.waits.Load(),
		InstancesCreated: c.created.Load(), InstancesReplaced: c.replaced.Load(), InstancesRecycled: c.recycled.Load(),
		MemoryLimitHits: c.memoryLimitHits.Load(), LogLines: c.logLines.Load(), LogDropped: c.logDropped.Load(),
		LogRejected: c.logRejected.Load(), LogBytes: c.logBytes.Load(), PeakMemoryBytes: c.peakMemory.Load(), Disabled: p.disabled.Load(),
	}
	if u := p.breaker.until.Load(); u != 0 && time.Now().UnixNano() < u {
		s.QuarantinedUntil = time.Unix(0, u)
	}
	p.liveMu.Lock()
	for inst := range p.live {
		s.Instances = append(s.Instances, InstanceStats{Calls: inst.callsSeen.Load(), MemoryBytes: inst.memBytes.Load(), PeakMemoryBytes: inst.peakBytes.Load()})
	}
	p.liveMu.Unlock()
	return s
}
