package guardstack

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/mqttguard/mqttguard/trust"
)

// The trust file keeps punishments over a restart: the records of the
// clients and usernames in a state worse than normal, one JSON object a
// line (trust.Record), written beside the ban file whenever a state
// changes (by the saver, once for a burst) and at Close, and restored at
// start, each ending when it would have. Without it a client in state
// "disconnected" would connect again right after a restart.

// SaveTrust writes the punished records to security.trust_file.
func (st *Stack) SaveTrust() {
	path := st.Cfg.Security.TrustFile
	if path == "" || st.Tracker == nil {
		return
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	for _, r := range st.Tracker.Records(trust.Throttled, time.Now()) {
		enc.Encode(r)
	}
	if err := writeFileAtomic(st.Cfg.Path(path), b.Bytes()); err != nil {
		st.Log.Error("saving the trust file", "error", err)
	}
}

// loadTrust restores what SaveTrust saved; a line that does not parse
// is logged with its line and skipped.
func (st *Stack) loadTrust(now time.Time) {
	path := st.Cfg.Security.TrustFile
	if path == "" {
		return
	}
	path = st.Cfg.Path(path)
	data, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return
	}
	if err != nil {
		st.Log.Error("trust file: not read; punishments start afresh", "file", path, "error", err)
		return
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 1<<20)
	n := 0
	for line := 1; sc.Scan(); line++ {
		if len(bytes.TrimSpace(sc.Bytes())) == 0 {
			continue
		}
		var r trust.Record
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			st.Log.Error("trust file: line skipped", "file", fmt.Sprintf("%s:%d", path, line), "error", err)
			continue
		}
		if err := st.Tracker.Restore(r, now); err != nil {
			st.Log.Error("trust file: line skipped", "file", fmt.Sprintf("%s:%d", path, line), "error", err)
			continue
		}
		n++
	}
	if n > 0 {
		st.Log.Info("trust states restored", "file", path, "records", n)
	}
}

// writeFileAtomic replaces path with data: a crash leaves the old file
// or the new one, never half of one.
func writeFileAtomic(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
