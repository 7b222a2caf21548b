// Package gcrastore is a ratelimit.Store in memory, for tests and
// examples: the GCRA a shared store (package redisstore) runs, one
// theoretical arrival time (TAT) per key, on a clock the caller sets, so
// that what brokers sharing a limit do to it can be checked exactly. It
// can also fail or hang on demand, like a store that went down.
//
// It does not import package ratelimit (whose own tests use it); those
// tests check that *Store implements ratelimit.Store.
package gcrastore

import (
	"context"
	"sync"
	"time"
)

// Store holds one GCRA bucket per key. It is safe for concurrent use.
type Store struct {
	mu    sync.Mutex
	now   time.Time
	tat   map[string]time.Time
	err   error // returned by every call while set
	block bool  // wait for the context instead of answering
	calls int
}

// New returns an empty store whose clock reads now.
func New(now time.Time) *Store { return &Store{now: now, tat: map[string]time.Time{}} }

// Take advances key's TAT by as much as it can, up to hi and at least
// lo, without taking it more than tolerance ahead of the store's clock,
// and returns how far it advanced it; when not even lo fits it takes
// nothing and returns how long until lo would fit (ratelimit.Store).
func (s *Store) Take(ctx context.Context, key string, tolerance, lo, hi time.Duration) (taken, wait time.Duration, err error) {
	s.mu.Lock()
	s.calls++
	block, err := s.block, s.err
	s.mu.Unlock()
	if block {
		<-ctx.Done()
		return 0, 0, ctx.Err()
	}
	if err != nil {
		return 0, 0, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	tat := s.tat[key]
	if tat.Before(s.now) {
		tat = s.now
	}
	avail := s.now.Add(tolerance).Sub(tat)
	if avail < lo {
		return 0, lo - avail, nil
	}
	got := min(avail, hi)
	s.tat[key] = tat.Add(got)
	return got, 0, nil
}

// SetNow sets the store's clock.
func (s *Store) SetNow(now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.now = now
}

// Fail makes every call return err from now on (nil: answer again).
func (s *Store) Fail(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.err = err
}

// Block makes every call wait for its context to end and return the
// context's error (false: answer again), like a store that hangs.
func (s *Store) Block(block bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.block = block
}

// Calls returns how many times Take was called.
func (s *Store) Calls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls
}
