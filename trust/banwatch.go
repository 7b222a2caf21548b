package trust

import (
	"sync"
	"sync/atomic"
)

// watchers is a list of callbacks that can be added and removed while
// others fire: firing reads an immutable snapshot without a lock, adding
// or stopping one copies the list under a lock (rare).
type watchers[T any] struct {
	mu   sync.Mutex
	next uint64
	list atomic.Pointer[[]watcher[T]]
}

type watcher[T any] struct {
	id uint64
	fn func(T)
}

// add registers fn and returns the func that unregisters it (idempotent).
func (w *watchers[T]) add(fn func(T)) (stop func()) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.next++
	id := w.next
	var cur []watcher[T]
	if p := w.list.Load(); p != nil {
		cur = *p
	}
	next := append(append(make([]watcher[T], 0, len(cur)+1), cur...), watcher[T]{id, fn})
	w.list.Store(&next)
	var once sync.Once
	return func() { once.Do(func() { w.remove(id) }) }
}

func (w *watchers[T]) remove(id uint64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	p := w.list.Load()
	if p == nil {
		return
	}
	next := make([]watcher[T], 0, len(*p))
	for _, x := range *p {
		if x.id != id {
			next = append(next, x)
		}
	}
	w.list.Store(&next)
}

// fire calls every callback registered now, in the order they were
// added. Call it without locks held.
func (w *watchers[T]) fire(v T) {
	if p := w.list.Load(); p != nil {
		for _, x := range *p {
			x.fn(v)
		}
	}
}

// WatchAdded calls fn after each ban is put in force — by Add, or by a
// change from elsewhere (Apply, Replace) that was not in force as it is —
// so a broker can disconnect the live sessions it matches. fn is called
// without locks held, on the goroutine that made the change (the publish
// path, for automatic bans): it must not block. stop unregisters it; a
// call already under way finishes.
func (b *Bans) WatchAdded(fn func(Ban)) (stop func()) { return b.added.add(fn) }

// WatchChanges calls fn after Add, Remove or Lift changed the list, and
// never for Apply or Replace: it is how a change made on this broker
// reaches a shared BanStore without the store's own notifications
// echoing back. Like WatchAdded's, fn runs without locks held on the
// changing goroutine and must not block; stop unregisters it.
func (b *Bans) WatchChanges(fn func(BanChange)) (stop func()) { return b.changed.add(fn) }
