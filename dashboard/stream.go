package dashboard

import (
	"encoding/json"
	"net/http"
	"strings"
	"time"
)

// The live view's pace: the stream wakes every streamTick and sends
// what arrived since, at most streamBatch refusals a tick (the rest are
// counted as missed), so a flood costs the browser a bounded number of
// rows a second and the Guard nothing but the Feed's copy.
const (
	streamTick    = 200 * time.Millisecond
	streamBatch   = 100
	streamBacklog = 50 // refusals sent when a view opens
	streamIdle    = 15 * time.Second
	writeTimeout  = 10 * time.Second
)

// batch is one server-sent event: the refusals since the last, oldest
// first, and how many were left out (overwritten in the ring, or past
// streamBatch).
type batch struct {
	Events []Event `json:"events"`
	Missed uint64  `json:"missed"`
}

// events streams refusals as server-sent events ("refusals", one JSON
// batch each), filtered by ?client=, ?topic= and ?addr= (substrings,
// any case).
func (d *Dashboard) events(w http.ResponseWriter, r *http.Request) {
	f := d.cfg.Feed
	if f == nil {
		http.Error(w, "no live view: this server keeps no feed of refusals", http.StatusNotFound)
		return
	}
	if n := d.streams.Add(1); int(n) > d.cfg.MaxStreams {
		d.streams.Add(-1)
		http.Error(w, "too many live views are open; close one", http.StatusServiceUnavailable)
		return
	}
	defer d.streams.Add(-1)
	q := r.URL.Query()
	client, topic, addr := strings.ToLower(q.Get("client")), strings.ToLower(q.Get("topic")), strings.ToLower(q.Get("addr"))
	keep := func(e *Event) bool {
		return (client == "" || strings.Contains(strings.ToLower(e.Client), client)) &&
			(topic == "" || strings.Contains(strings.ToLower(e.Topic), topic)) &&
			(addr == "" || strings.Contains(strings.ToLower(e.Addr), addr))
	}
	rc := http.NewResponseController(w)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)

	// The backlog first, oldest first; then everything after it.
	// Everything before next is the backlog's; everything from it on,
	// the stream's: no refusal is sent twice.
	next := f.end()
	back := f.Latest(streamBacklog, func(e *Event) bool { return e.Seq < next && keep(e) })
	for i, j := 0, len(back)-1; i < j; i, j = i+1, j-1 {
		back[i], back[j] = back[j], back[i]
	}
	if !send(rc, w, batch{Events: back}) {
		return
	}
	tick := time.NewTicker(streamTick)
	defer tick.Stop()
	idle := time.Now()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-d.done:
			return
		case <-tick.C:
		}
		evs, n, missed := f.Since(next, streamBatch, keep)
		if len(evs) == streamBatch {
			// A flood: skip to the end rather than fall behind for good.
			end := f.end()
			missed += end - n
			n = end
		}
		next = n
		if len(evs) == 0 && missed == 0 {
			if time.Since(idle) < streamIdle {
				continue
			}
			// A comment keeps proxies from closing an idle stream, and
			// finds a browser that has gone.
			if !write(rc, w, ": idle\n\n") {
				return
			}
			idle = time.Now()
			continue
		}
		if !send(rc, w, batch{Events: evs, Missed: missed}) {
			return
		}
		idle = time.Now()
	}
}

func send(rc *http.ResponseController, w http.ResponseWriter, b batch) bool {
	if b.Events == nil {
		b.Events = []Event{}
	}
	data, err := json.Marshal(b)
	if err != nil {
		return false
	}
	return write(rc, w, "event: refusals\ndata: "+string(data)+"\n\n")
}

// write sends s at once, with a deadline of its own: the server's
// WriteTimeout would end a stream that lives longer than it.
func write(rc *http.ResponseController, w http.ResponseWriter, s string) bool {
	rc.SetWriteDeadline(time.Now().Add(writeTimeout))
	if _, err := w.Write([]byte(s)); err != nil {
		return false
	}
	return rc.Flush() == nil
}
