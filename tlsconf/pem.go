package tlsconf

import (
	"bytes"
	"encoding/pem"
	"fmt"
	"os"
)

// FileError is a problem with one of the files a Config names, with
// what to do about it.
type FileError struct {
	Field string // the Config field: "CertFile", "KeyFile", …
	Path  string
	Msg   string
	Err   error // the underlying error, if any
}

func (e *FileError) Error() string {
	return fmt.Sprintf("tlsconf: %s %s: %s", e.Field, e.Path, e.Msg)
}

func (e *FileError) Unwrap() error { return e.Err }

// readFile reads a file and wraps the error with the field it is for.
func readFile(field, path string) ([]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, &FileError{Field: field, Path: path, Msg: "cannot read: " + err.Error(), Err: err}
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, &FileError{Field: field, Path: path, Msg: "is empty (truncated, or still being written?)"}
	}
	return data, nil
}

// pemBlocks splits data into PEM blocks and refuses anything that is not
// PEM between or after them: pem.Decode stops quietly at a damaged block,
// which turns a half-written full chain into a leaf-only chain that
// clients then refuse as "unknown authority".
func pemBlocks(field, path string, data []byte) ([]*pem.Block, error) {
	var blocks []*pem.Block
	rest := data
	for {
		trimmed := bytes.TrimLeft(rest, " \t\r\n")
		if len(trimmed) == 0 {
			break
		}
		block, next := pem.Decode(trimmed)
		if block == nil {
			if len(blocks) == 0 {
				return nil, notPEM(field, path, data)
			}
			return nil, &FileError{Field: field, Path: path,
				Msg: fmt.Sprintf("%d bytes of non-PEM data after block %d (truncated, or still being written?)", len(trimmed), len(blocks))}
		}
		blocks = append(blocks, block)
		rest = next
	}
	if len(blocks) == 0 {
		return nil, notPEM(field, path, data)
	}
	return blocks, nil
}

func notPEM(field, path string, data []byte) error {
	msg := "holds no PEM data"
	if len(data) > 0 && data[0] == 0x30 {
		msg += "; it looks like DER: convert it with `openssl x509 -inform der -in FILE -out FILE.pem` (a PKCS#12 bundle: `openssl pkcs12 -in FILE -nodes`)"
	}
	return &FileError{Field: field, Path: path, Msg: msg}
}

func isKeyBlock(t string) bool {
	return t == "PRIVATE KEY" || t == "RSA PRIVATE KEY" || t == "EC PRIVATE KEY" || t == "ENCRYPTED PRIVATE KEY"
}
