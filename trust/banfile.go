package trust

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// BanFileError lists the lines of a ban file that could not be loaded.
// The bans on every other line were loaded: one damaged line never lifts
// the others.
type BanFileError struct {
	Source string
	Lines  []BanLineError
}

// BanLineError is one bad line.
type BanLineError struct {
	Line int
	Err  error
}

func (e *BanFileError) Error() string {
	var b strings.Builder
	src := e.Source
	if src == "" {
		src = "bans"
	}
	fmt.Fprintf(&b, "%s: %d bad line(s), the other bans were loaded", src, len(e.Lines))
	for i, l := range e.Lines {
		if i == 5 {
			fmt.Fprintf(&b, "; … %d more", len(e.Lines)-5)
			break
		}
		fmt.Fprintf(&b, "; line %d: %v", l.Line, l.Err)
	}
	return b.String()
}

// Load reads bans in JSON lines, one Ban object per line (what Save
// writes), and adds those still in force at t. Blank lines and lines
// starting with '#' are skipped. Bad lines are reported together in a
// *BanFileError; the good lines are loaded anyway.
func (b *Bans) Load(r io.Reader, t time.Time) error {
	return b.load(r, t, "")
}

func (b *Bans) load(r io.Reader, t time.Time, source string) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	var bad []BanLineError
	line := 0
	for sc.Scan() {
		line++
		text := bytes.TrimSpace(sc.Bytes())
		if len(text) == 0 || text[0] == '#' {
			continue
		}
		var ban Ban
		dec := json.NewDecoder(bytes.NewReader(text))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&ban); err != nil {
			bad = append(bad, BanLineError{line, fmt.Errorf("not a ban object: %v", err)})
			continue
		}
		if !ban.active(t) {
			continue
		}
		if err := b.Add(ban); err != nil {
			bad = append(bad, BanLineError{line, err})
		}
	}
	if err := sc.Err(); err != nil {
		bad = append(bad, BanLineError{line + 1, err})
	}
	if len(bad) > 0 {
		return &BanFileError{Source: source, Lines: bad}
	}
	return nil
}

// Save writes the bans in force at t as JSON lines.
func (b *Bans) Save(w io.Writer, t time.Time) error {
	bw := bufio.NewWriter(w)
	for _, ban := range b.List(t) {
		line, err := json.Marshal(ban)
		if err != nil {
			return err
		}
		bw.Write(line)
		bw.WriteByte('\n')
	}
	return bw.Flush()
}

// MarshalJSON writes the kind by name.
func (k BanKind) MarshalJSON() ([]byte, error) { return json.Marshal(k.String()) }

// UnmarshalJSON reads the kind by name.
func (k *BanKind) UnmarshalJSON(data []byte) error {
	var s string
	if err := json.Unmarshal(data, &s); err != nil {
		return err
	}
	v, err := ParseBanKind(s)
	*k = v
	return err
}

// LoadFile is Load from a file; a missing file is an empty list, not an
// error (the first start of a broker has none).
func (b *Bans) LoadFile(path string, t time.Time) error {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("bans: cannot read %s: %w", path, err)
	}
	defer f.Close()
	return b.load(f, t, path)
}

// SaveFile writes the list to path atomically: a temporary file in the
// same directory, synced, then renamed over path, so a crash leaves
// either the old list or the new one.
func (b *Bans) SaveFile(path string, t time.Time) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".bans-*")
	if err != nil {
		return fmt.Errorf("bans: cannot write next to %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if err := b.Save(tmp, t); err != nil {
		tmp.Close()
		return fmt.Errorf("bans: writing %s: %w", tmp.Name(), err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("bans: syncing %s: %w", tmp.Name(), err)
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("bans: replacing %s: %w", path, err)
	}
	return nil
}
