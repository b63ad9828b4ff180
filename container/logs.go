package container

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"
)

// The log of a detached container is podman's k8s-file format, one line
// per chunk of output:
//
//	2026-11-28T10:00:00.123456789Z stdout F hello
//
// F marks a full line, P a partial one (no newline yet, or longer than the
// read buffer); the stream is stdout or stderr (a terminal merges them into
// stdout).
type logWriter struct {
	mu sync.Mutex
	f  *os.File
	wg sync.WaitGroup
	// attached are rl attach clients' outputs, by stream: they get the
	// output as it comes, besides the log.
	attached map[string]map[*os.File]bool
}

func openLog(path string) (*logWriter, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("opening the container log: %w", err)
	}
	return &logWriter{f: f, attached: map[string]map[*os.File]bool{}}, nil
}

// copy logs everything read from r as stream until EOF.
func (l *logWriter) copy(stream string, r io.ReadCloser) {
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		defer r.Close()
		br := bufio.NewReaderSize(r, 64<<10)
		for {
			line, err := br.ReadSlice('\n')
			if len(line) > 0 {
				l.tee(stream, line)
				full := line[len(line)-1] == '\n'
				if full {
					line = line[:len(line)-1]
				}
				l.write(stream, full, line)
			}
			if err != nil && err != bufio.ErrBufferFull {
				return
			}
		}
	}()
}

func (l *logWriter) write(stream string, full bool, line []byte) {
	tag := "P"
	if full {
		tag = "F"
	}
	var b bytes.Buffer
	b.WriteString(time.Now().UTC().Format(time.RFC3339Nano))
	b.WriteString(" " + stream + " " + tag + " ")
	b.Write(line)
	b.WriteByte('\n')
	l.mu.Lock()
	_, _ = l.f.Write(b.Bytes())
	l.mu.Unlock()
}

// tee gives a chunk of output to the attached clients of its stream; a
// client that cannot take it is dropped.
func (l *logWriter) tee(stream string, b []byte) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for w := range l.attached[stream] {
		if _, err := w.Write(b); err != nil {
			delete(l.attached[stream], w)
		}
	}
}

// attach adds a client's output for stream; the returned func removes it.
func (l *logWriter) attach(stream string, w *os.File) func() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.attached[stream] == nil {
		l.attached[stream] = map[*os.File]bool{}
	}
	l.attached[stream][w] = true
	return func() {
		l.mu.Lock()
		delete(l.attached[stream], w)
		l.mu.Unlock()
	}
}

// close waits for the streams to end and closes the file.
func (l *logWriter) close() {
	l.wg.Wait()
	l.f.Close()
}

// LogOptions are rl logs' flags.
type LogOptions struct {
	Follow     bool
	Tail       int // lines from the end; < 0: all
	Timestamps bool
	// Running reports whether the container still runs (for Follow).
	Running func() bool
}

// ReadLog writes a container's log to stdout and stderr, each line to the
// stream it came from.
func ReadLog(ctx context.Context, path string, o LogOptions, stdout, stderr io.Writer) error {
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		if o.Follow && o.Running != nil && o.Running() {
			// Not written yet: follow from the start.
			for {
				if f, err = os.Open(path); err == nil || !o.Running() {
					break
				}
				time.Sleep(50 * time.Millisecond)
			}
		}
		if f == nil {
			return nil // never logged: a container run in the foreground
		}
	} else if err != nil {
		return fmt.Errorf("reading the container log: %w", err)
	}
	defer f.Close()
	if o.Tail >= 0 {
		if err := seekTail(f, o.Tail); err != nil {
			return err
		}
	}
	br := bufio.NewReaderSize(f, 64<<10)
	var pending []byte // a line not yet complete on disk
	for {
		chunk, err := br.ReadBytes('\n')
		pending = append(pending, chunk...)
		if err == nil {
			emit(pending, o.Timestamps, stdout, stderr)
			pending = pending[:0]
			continue
		}
		if err != io.EOF {
			return err
		}
		if !o.Follow || o.Running == nil || !o.Running() {
			// One last read: the container may have written as it exited.
			if rest, _ := io.ReadAll(br); len(rest) > 0 {
				pending = append(pending, rest...)
				for _, l := range bytes.SplitAfter(pending, []byte("\n")) {
					if len(l) > 0 {
						emit(l, o.Timestamps, stdout, stderr)
					}
				}
			}
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// emit writes one log line's message to its stream.
func emit(line []byte, timestamps bool, stdout, stderr io.Writer) {
	s := strings.TrimSuffix(string(line), "\n")
	parts := strings.SplitN(s, " ", 4)
	if len(parts) < 3 {
		return
	}
	msg := ""
	if len(parts) == 4 {
		msg = parts[3]
	}
	if parts[2] == "F" {
		msg += "\n"
	}
	if timestamps {
		msg = parts[0] + " " + msg
	}
	w := stdout
	if parts[1] == "stderr" {
		w = stderr
	}
	io.WriteString(w, msg)
}

// seekTail positions f so that the last n full lines remain.
func seekTail(f *os.File, n int) error {
	st, err := f.Stat()
	if err != nil {
		return err
	}
	size := st.Size()
	if n == 0 {
		_, err := f.Seek(size, io.SeekStart)
		return err
	}
	const block = 64 << 10
	lines := 0
	pos := size
	buf := make([]byte, block)
	for pos > 0 {
		step := int64(block)
		if pos < step {
			step = pos
		}
		pos -= step
		if _, err := f.ReadAt(buf[:step], pos); err != nil && err != io.EOF {
			return err
		}
		for i := step - 1; i >= 0; i-- {
			if buf[i] == '\n' && pos+i != size-1 {
				lines++
				if lines == n {
					_, err := f.Seek(pos+i+1, io.SeekStart)
					return err
				}
			}
		}
	}
	_, err = f.Seek(0, io.SeekStart)
	return err
}
