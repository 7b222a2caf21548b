package dashboard

import (
	"cmp"
	"slices"
	"time"
)

// maxAnomalous bounds the devices the devices page remembers: a client
// needs credentials to report, but may invent client IDs.
const maxAnomalous = 512

// anomalyLog remembers, per client ID, the last push-interval anomaly
// (the Feed's ring forgets them under a flood of other refusals). It
// lives under the Feed's lock.
type anomalyLog struct {
	max     int
	devices map[string]*anomalyEntry
}

// anomalyEntry keeps the last anomaly's slot, copied: nothing is
// decoded (or allocated) on the Guard's path but a new device's key.
type anomalyEntry struct {
	last  slot
	at    time.Time
	count int
}

// Anomalous is a device whose reports broke its push-interval profile.
type Anomalous struct {
	Client   string
	Username string
	Topic    string
	Last     time.Time // its last anomaly
	Count    int       // anomalies seen (since the dashboard started, or the device was forgotten)
	Detail   string    // the last one: "too-early: gap 100ms, profile 2s±1s, strike 4"
}

func (l *anomalyLog) add(s *slot, at time.Time) {
	id := s.text[:s.lens[fClient]] // fClient is the first field
	a, ok := l.devices[string(id)]
	if !ok {
		if l.devices == nil {
			l.devices = map[string]*anomalyEntry{}
		}
		if len(l.devices) >= l.max {
			l.evictOldest()
		}
		a = &anomalyEntry{}
		l.devices[string(id)] = a
	}
	a.last, a.at = *s, at
	a.count++
}

func (l *anomalyLog) evictOldest() {
	var oldest string
	var when time.Time
	for id, a := range l.devices {
		if when.IsZero() || a.at.Before(when) {
			oldest, when = id, a.at
		}
	}
	delete(l.devices, oldest)
}

// Anomalous lists the devices with a push-interval anomaly since since,
// the most recent first.
func (f *Feed) Anomalous(since time.Time) []Anomalous {
	// Copied out under the lock, decoded after it: the Guard waits for
	// a copy, never for the decoding.
	var kept []anomalyEntry
	f.mu.Lock()
	for _, a := range f.anomalies.devices {
		if !a.at.Before(since) {
			kept = append(kept, *a)
		}
	}
	f.mu.Unlock()
	out := make([]Anomalous, 0, len(kept))
	for i := range kept {
		s := &kept[i].last
		out = append(out, Anomalous{Client: s.field(fClient), Username: s.field(fUsername), Topic: s.field(fTopic),
			Last: kept[i].at, Count: kept[i].count, Detail: s.field(fDetail)})
	}
	slices.SortFunc(out, func(a, b Anomalous) int { return cmp.Or(b.Last.Compare(a.Last), cmp.Compare(a.Client, b.Client)) })
	return out
}
