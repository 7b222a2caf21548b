package passwd

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode"
	"unicode/utf8"
)

// ParseError is a problem in a password file, with the line to look at.
type ParseError struct {
	Source string // file name, "" when parsing an io.Reader
	Line   int
	Msg    string
}

func (e *ParseError) Error() string {
	src := e.Source
	if src == "" {
		src = "password file"
	}
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %s", src, e.Line, e.Msg)
	}
	return src + ": " + e.Msg
}

// File is a set of users and their password hashes. Its methods are safe
// for concurrent use; a broker usually keeps one in a Holder.
type File struct {
	mu    sync.RWMutex
	users map[string]*entry
	// dummy is verified against for unknown users, with the cost of a
	// typical entry, so that a missing user takes as long as a wrong
	// password.
	dummy atomic.Pointer[entry]
	// Iterations is the PBKDF2 iteration count Add uses; 0 means
	// DefaultIterations.
	Iterations int
	// version counts changes (Add, Delete): a Holder's cached successes
	// are of one version.
	version atomic.Uint64
}

// New returns an empty File.
func New() *File { return &File{users: map[string]*entry{}} }

// ParseMosquitto reads a mosquitto password file. Blank lines and lines
// starting with '#' are skipped. Every other line must be
// "username:$7$…" or "username:$6$…"; anything else, a duplicate user, or
// a user without a hash is an error naming the line.
func ParseMosquitto(r io.Reader) (*File, error) { return parse(r, "") }

func parse(r io.Reader, source string) (*File, error) {
	f := New()
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 512), 256<<10)
	line := 0
	fail := func(format string, args ...any) (*File, error) {
		return nil, &ParseError{Source: source, Line: line, Msg: fmt.Sprintf(format, args...)}
	}
	for sc.Scan() {
		line++
		text := strings.TrimRight(sc.Text(), "\r")
		if strings.TrimSpace(text) == "" || text[0] == '#' {
			continue
		}
		user, hash, ok := strings.Cut(text, ":")
		if !ok {
			return fail("want \"username:hash\"; there is no ':'")
		}
		user = strings.TrimSpace(user)
		if err := validUsername(user); err != nil {
			return fail("%v", err)
		}
		if _, dup := f.users[user]; dup {
			return fail("user %q appears twice (mosquitto silently keeps the first)", user)
		}
		e, err := decode(strings.TrimSpace(hash))
		if err != nil {
			return fail("user %q: %v", user, err)
		}
		f.users[user] = e
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			line++
			return fail("line longer than 256 KiB")
		}
		return nil, &ParseError{Source: source, Msg: "reading: " + err.Error()}
	}
	if len(f.users) == 0 {
		return nil, &ParseError{Source: source, Msg: "no users: an empty password file would refuse everyone, which is seldom meant; add users or leave the file out of the configuration"}
	}
	f.resetDummy()
	return f, nil
}

// validUsername applies mosquitto_passwd's rules: not empty, no ':', no
// control characters, valid UTF-8, at most 65535 bytes.
func validUsername(u string) error {
	switch {
	case u == "":
		return errors.New("empty username")
	case len(u) > 65535:
		return errors.New("username longer than 65535 bytes")
	case !utf8.ValidString(u):
		return errors.New("username is not valid UTF-8")
	case strings.ContainsRune(u, ':'):
		return errors.New("username contains ':'")
	}
	for _, r := range u {
		if unicode.IsControl(r) {
			return fmt.Errorf("username %q contains a control character", u)
		}
	}
	return nil
}

// resetDummy picks the cost of unknown-user verification: that of the
// most common iteration count in the file.
func (f *File) resetDummy() {
	f.mu.RLock()
	defer f.mu.RUnlock()
	counts := map[int]int{}
	best, bestN := DefaultIterations, 0
	for _, e := range f.users {
		it := e.iterations
		if e.scheme == schemeSHA512 {
			it = 0
		}
		counts[it]++
		if counts[it] > bestN || (counts[it] == bestN && it > best) {
			best, bestN = it, counts[it]
		}
	}
	d := &entry{scheme: schemePBKDF2, iterations: best, salt: make([]byte, saltLen), hash: make([]byte, hashLen)}
	if best == 0 {
		d.scheme = schemeSHA512
	}
	f.dummy.Store(d)
}

// Verify reports whether password is the user's. It takes the same time
// for a user who does not exist as for a wrong password (it hashes
// against a dummy entry of the file's usual cost), and compares in
// constant time.
func (f *File) Verify(username, password string) bool {
	f.mu.RLock()
	e, ok := f.users[username]
	f.mu.RUnlock()
	if !ok {
		if d := f.dummy.Load(); d != nil {
			d.verify(password)
		}
		return false
	}
	return e.verify(password)
}

// Has reports whether the user exists.
func (f *File) Has(username string) bool {
	f.mu.RLock()
	defer f.mu.RUnlock()
	_, ok := f.users[username]
	return ok
}

// Users returns the usernames, sorted.
func (f *File) Users() []string {
	f.mu.RLock()
	defer f.mu.RUnlock()
	out := make([]string, 0, len(f.users))
	for u := range f.users {
		out = append(out, u)
	}
	sort.Strings(out)
	return out
}

// Len is the number of users.
func (f *File) Len() int {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return len(f.users)
}

// Add sets a user's password (mosquitto_passwd -b), hashing it with
// f.Iterations (default DefaultIterations).
func (f *File) Add(username, password string) error {
	if err := validUsername(username); err != nil {
		return fmt.Errorf("passwd: %w", err)
	}
	it := f.Iterations
	if it == 0 {
		it = DefaultIterations
	}
	e, err := newEntry(password, it)
	if err != nil {
		return err
	}
	f.mu.Lock()
	if f.users == nil {
		f.users = map[string]*entry{}
	}
	f.users[strings.Clone(username)] = e
	f.version.Add(1)
	f.mu.Unlock()
	f.resetDummy()
	return nil
}

// Delete removes a user (mosquitto_passwd -D); it reports whether the user
// existed.
func (f *File) Delete(username string) bool {
	f.mu.Lock()
	_, ok := f.users[username]
	delete(f.users, username)
	f.version.Add(1)
	f.mu.Unlock()
	f.resetDummy()
	return ok
}

// Write writes the file in mosquitto's format, users sorted.
func (f *File) Write(w io.Writer) error {
	f.mu.RLock()
	users := make([]string, 0, len(f.users))
	for u := range f.users {
		users = append(users, u)
	}
	sort.Strings(users)
	var buf bytes.Buffer
	for _, u := range users {
		buf.WriteString(u)
		buf.WriteByte(':')
		buf.WriteString(f.users[u].encode())
		buf.WriteByte('\n')
	}
	f.mu.RUnlock()
	_, err := w.Write(buf.Bytes())
	return err
}

// WriteFile writes the file to path atomically (a temporary file renamed
// into place) with mode 0600: a password file is a secret.
func (f *File) WriteFile(path string) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".passwd-*")
	if err != nil {
		return fmt.Errorf("passwd: cannot write next to %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	if err := f.Write(tmp); err != nil {
		tmp.Close()
		return fmt.Errorf("passwd: writing %s: %w", path, err)
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

// LoadFile reads a password file from disk.
func LoadFile(path string) (*File, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, &ParseError{Source: path, Msg: "cannot read: " + err.Error()}
	}
	return parse(bytes.NewReader(data), path)
}

// ConvertPlaintext reads "username:password" lines and hashes every
// password with the given iteration count (0: DefaultIterations), as
// mosquitto_passwd -U does. A password containing ':' is an error rather
// than being cut at the ':' as mosquitto_passwd -U silently does.
func ConvertPlaintext(r io.Reader, iterations int) (*File, error) {
	f := New()
	f.Iterations = iterations
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 512), 256<<10)
	line := 0
	for sc.Scan() {
		line++
		text := strings.TrimRight(sc.Text(), "\r")
		if strings.TrimSpace(text) == "" || text[0] == '#' {
			continue
		}
		user, pass, ok := strings.Cut(text, ":")
		if !ok {
			return nil, &ParseError{Line: line, Msg: "want \"username:password\""}
		}
		if strings.HasPrefix(pass, "$7$") || strings.HasPrefix(pass, "$6$") {
			return nil, &ParseError{Line: line, Msg: fmt.Sprintf("user %q already has a hash; this file is not plain text", user)}
		}
		if strings.Contains(pass, ":") {
			return nil, &ParseError{Line: line, Msg: fmt.Sprintf("user %q: the password contains ':', which mosquitto_passwd -U would cut off silently; change the password", user)}
		}
		if f.Has(strings.TrimSpace(user)) {
			return nil, &ParseError{Line: line, Msg: fmt.Sprintf("user %q appears twice", user)}
		}
		if err := f.Add(strings.TrimSpace(user), pass); err != nil {
			return nil, &ParseError{Line: line, Msg: err.Error()}
		}
	}
	if err := sc.Err(); err != nil {
		return nil, &ParseError{Msg: "reading: " + err.Error()}
	}
	return f, nil
}

// Holder keeps the password file in force for a running broker. Reload
// swaps in a new file atomically; a file that does not load leaves the
// previous one in force. The zero Holder holds nothing and verifies no
// one.
//
// Verification through a Holder is bounded (see VerifyContext): a pool
// of hashing slots with a queue the caller's context bounds, and a
// cache of recent successes that Store and Reload empty.
type Holder struct {
	f   atomic.Pointer[File]
	lim VerifyLimits

	once sync.Once
	v    *verifier
	now  func() time.Time // tests set it
}

// NewHolder returns a Holder holding f, verifying within the default
// VerifyLimits.
func NewHolder(f *File) *Holder { return NewHolderWithLimits(f, VerifyLimits{}) }

// NewHolderWithLimits returns a Holder holding f, verifying within lim
// (zero fields: defaults).
func NewHolderWithLimits(f *File, lim VerifyLimits) *Holder {
	h := &Holder{lim: lim}
	h.f.Store(f)
	return h
}

// File returns the file in force (nil if none).
func (h *Holder) File() *File { return h.f.Load() }

// Reload reads path and puts it in force, or keeps the old file and
// returns why not. Cached successes of the old file no longer count.
func (h *Holder) Reload(path string) error {
	f, err := LoadFile(path)
	if err != nil {
		return fmt.Errorf("passwd: reload kept the previous file: %w", err)
	}
	h.Store(f)
	return nil
}

// Store puts f in force; a nil f is ignored. Cached successes of the old
// file no longer count.
func (h *Holder) Store(f *File) {
	if f != nil {
		h.f.Store(f)
		h.verifier().forget()
	}
}

// Verify checks against the file in force, through the pool and the
// cache, waiting for a slot as long as it takes; with no file, it
// refuses. A broker answering CONNECTs uses VerifyContext, with a
// deadline.
func (h *Holder) Verify(username, password string) bool {
	ok, _ := h.VerifyContext(context.Background(), username, password)
	return ok
}

// VerifyContext reports whether password is username's in the file in
// force, at a bounded cost to the broker:
//
//   - A success remembered from the last VerifyLimits.CacheFor (default
//     5 minutes), of the same file, answers true at once, without a hash
//     and whatever ctx says.
//   - Otherwise it waits for one of VerifyLimits.Concurrency hashing
//     slots (default GOMAXPROCS) for as long as ctx allows, then hashes
//     (~90 ms at 210,000 iterations) and, if the password is right,
//     remembers the success.
//   - If ctx ends first, it returns false and an error that errors.Is
//     ErrBusy (and ctx.Err()): refuse the client with "server busy",
//     MQTT 5.0 CONNACK 0x89 or 3.1.1 return code 3. Give ctx a deadline
//     shorter than the client's patience (a second or two); without one
//     a caller waits as long as the queue is.
//
// A wrong password and an unknown user both cost a full hash and are
// never cached: the answer takes the same time for both. With no file
// in force it returns false, nil.
func (h *Holder) VerifyContext(ctx context.Context, username, password string) (ok bool, err error) {
	f := h.f.Load()
	if f == nil {
		return false, nil
	}
	now := time.Now
	if h.now != nil {
		now = h.now
	}
	return h.verifier().verify(ctx, f, username, password, now())
}

// VerifyStats returns the Holder's verification counters.
func (h *Holder) VerifyStats() VerifyStats { return h.verifier().stats() }

func (h *Holder) verifier() *verifier {
	h.once.Do(func() { h.v = newVerifier(h.lim) })
	return h.v
}
