package passwd

import (
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
)

// DefaultIterations is Hash's PBKDF2 iteration count, mosquitto 2.1's.
const DefaultIterations = 210_000

// saltLen is the salt mosquitto 2.0's broker insists on (it drops
// entries whose salt is not 12 bytes); hashLen is SHA-512's output.
const (
	saltLen = 12
	hashLen = 64
)

// maxIterations keeps a hostile file from making one Verify take hours.
const maxIterations = 10_000_000

type scheme uint8

const (
	schemePBKDF2 scheme = 7 // $7$
	schemeSHA512 scheme = 6 // $6$
)

// entry is one user's decoded hash.
type entry struct {
	scheme     scheme
	iterations int
	salt, hash []byte
}

// digests counts hash computations, so tests can see that an unknown
// user costs a computation like a known one; hashing and peakHashing
// count those running now and the most that ever ran at once, so tests
// can see that a Holder's pool bounds them.
var (
	digests              atomic.Uint64
	hashing, peakHashing atomic.Int64
)

// digest computes the hash of password with e's scheme and salt.
func (e *entry) digest(password string) []byte {
	digests.Add(1)
	for n := hashing.Add(1); ; {
		if p := peakHashing.Load(); n <= p || peakHashing.CompareAndSwap(p, n) {
			break
		}
	}
	defer hashing.Add(-1)
	if e.scheme == schemeSHA512 {
		h := sha512.New()
		h.Write([]byte(password))
		h.Write(e.salt)
		return h.Sum(nil)
	}
	// The key length is fixed and valid; pbkdf2.Key can only fail for
	// FIPS-mode parameter checks, which these meet.
	key, err := pbkdf2.Key(sha512.New, password, e.salt, e.iterations, hashLen)
	if err != nil {
		return make([]byte, hashLen)
	}
	return key
}

func (e *entry) verify(password string) bool {
	return subtle.ConstantTimeCompare(e.digest(password), e.hash) == 1
}

// encode renders the entry as mosquitto writes it.
func (e *entry) encode() string {
	b64 := base64.StdEncoding
	if e.scheme == schemeSHA512 {
		return "$6$" + b64.EncodeToString(e.salt) + "$" + b64.EncodeToString(e.hash)
	}
	return "$7$" + strconv.Itoa(e.iterations) + "$" + b64.EncodeToString(e.salt) + "$" + b64.EncodeToString(e.hash)
}

// decode parses the part after "username:".
func decode(s string) (*entry, error) {
	b64 := base64.StdEncoding
	switch {
	case strings.HasPrefix(s, "$7$"):
		parts := strings.Split(s[3:], "$")
		if len(parts) != 3 {
			return nil, errors.New("a $7$ hash has the form $7$<iterations>$<salt>$<hash>")
		}
		it, err := strconv.Atoi(parts[0])
		if err != nil || it < 1 || it > maxIterations {
			return nil, fmt.Errorf("iterations %q: want a number from 1 to %d", parts[0], maxIterations)
		}
		salt, err := b64.DecodeString(parts[1])
		if err != nil || len(salt) == 0 {
			return nil, fmt.Errorf("salt %q is not base64", parts[1])
		}
		hash, err := b64.DecodeString(parts[2])
		if err != nil || len(hash) != hashLen {
			return nil, fmt.Errorf("hash is not %d bytes of base64", hashLen)
		}
		return &entry{scheme: schemePBKDF2, iterations: it, salt: salt, hash: hash}, nil
	case strings.HasPrefix(s, "$6$"):
		parts := strings.Split(s[3:], "$")
		if len(parts) != 2 {
			return nil, errors.New("a $6$ hash has the form $6$<salt>$<hash>")
		}
		salt, err := b64.DecodeString(parts[0])
		if err != nil || len(salt) == 0 {
			return nil, fmt.Errorf("salt %q is not base64", parts[0])
		}
		hash, err := b64.DecodeString(parts[1])
		if err != nil || len(hash) != hashLen {
			return nil, fmt.Errorf("hash is not %d bytes of base64", hashLen)
		}
		return &entry{scheme: schemeSHA512, salt: salt, hash: hash}, nil
	case s == "":
		return nil, errors.New("no password hash: mosquitto would accept any password for this user; set one with mosquitto_passwd or File.Add")
	case strings.HasPrefix(s, "$argon2"):
		return nil, errors.New("argon2id hashes (mosquitto 2.1 built with argon2) are not supported; re-create the password with mosquitto_passwd -H sha512-pbkdf2 or File.Add")
	}
	return nil, errors.New("not a mosquitto password hash ($7$ or $6$); a plain-text password file must be converted first (mosquitto_passwd -U or ConvertPlaintext)")
}

// Hash returns the "$7$…" hash of password, as mosquitto_passwd writes it
// after "username:", with DefaultIterations and a random 12-byte salt.
func Hash(password string) (string, error) {
	return HashIterations(password, DefaultIterations)
}

// HashIterations is Hash with another iteration count (1–10,000,000).
func HashIterations(password string, iterations int) (string, error) {
	e, err := newEntry(password, iterations)
	if err != nil {
		return "", err
	}
	return e.encode(), nil
}

func newEntry(password string, iterations int) (*entry, error) {
	if iterations < 1 || iterations > maxIterations {
		return nil, fmt.Errorf("passwd: iterations %d: want 1 to %d", iterations, maxIterations)
	}
	if len(password) > 65535 {
		return nil, errors.New("passwd: a password is at most 65535 bytes (an MQTT CONNECT cannot carry more)")
	}
	salt := make([]byte, saltLen)
	if _, err := rand.Read(salt); err != nil {
		return nil, fmt.Errorf("passwd: no randomness for a salt: %w", err)
	}
	e := &entry{scheme: schemePBKDF2, iterations: iterations, salt: salt}
	e.hash = e.digest(password)
	return e, nil
}
