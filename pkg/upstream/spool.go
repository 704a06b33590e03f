package upstream

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
)

// memBody is the largest body kept in memory; larger ones go to a file.
const memBody = 64 << 10

// spooled is a request body read whole and hashed before it is sent: the
// bytes in memory, or a temporary file for bodies over memBody. Close
// removes the file.
type spooled struct {
	mem    []byte
	file   *os.File
	size   int64
	sha256 string
}

// spoolError is a failure of the temporary file, not of the reader.
type spoolError struct{ err error }

func (e *spoolError) Error() string { return "upstream: spool body: " + e.err.Error() }
func (e *spoolError) Unwrap() error { return e.err }

// readSpool reads r to its end, hashing it; memory stays at memBody bytes
// whatever the body's size.
func readSpool(r io.Reader, dir string) (*spooled, error) {
	h := sha256.New()
	r = io.TeeReader(r, h)
	head, err := io.ReadAll(io.LimitReader(r, memBody+1))
	if err != nil {
		return nil, err
	}
	s := &spooled{mem: head, size: int64(len(head))}
	if len(head) > memBody {
		s.mem = nil
		if err := s.toFile(dir, head, r); err != nil {
			s.Close()
			return nil, err
		}
	}
	s.sha256 = hex.EncodeToString(h.Sum(nil))
	return s, nil
}

// toFile writes head and the rest of r to a new temporary file in dir.
func (s *spooled) toFile(dir string, head []byte, r io.Reader) error {
	f, err := os.CreateTemp(dir, "pushd-upstream-*")
	if err != nil {
		return &spoolError{err}
	}
	s.file = f
	if _, err := f.Write(head); err != nil {
		return &spoolError{err}
	}
	n, err := io.Copy(fileWriter{f}, r)
	s.size += n
	if err != nil {
		return err // a *spoolError from fileWriter, or the browser's side
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return &spoolError{err}
	}
	return nil
}

// fileWriter tells the file's write errors from the reader's in io.Copy.
type fileWriter struct{ f *os.File }

func (w fileWriter) Write(p []byte) (int, error) {
	n, err := w.f.Write(p)
	if err != nil {
		return n, &spoolError{err}
	}
	return n, nil
}

// reader returns the body to send; it stays valid until Close.
func (s *spooled) reader() io.Reader {
	switch {
	case s.size == 0:
		return nil
	case s.file != nil:
		return io.NopCloser(s.file)
	default:
		return bytes.NewReader(s.mem)
	}
}

// Close removes the temporary file, if any.
func (s *spooled) Close() error {
	if s.file == nil {
		return nil
	}
	cerr := s.file.Close()
	if err := errors.Join(cerr, os.Remove(s.file.Name())); err != nil {
		return fmt.Errorf("upstream: remove spool: %w", err)
	}
	return nil
}
