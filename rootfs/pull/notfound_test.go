package pull

import "testing"

func TestNotFound(t *testing.T) {
	for _, c := range []struct {
		msg  string
		want bool
	}{
		{"reading manifest latest in 127.0.0.1:5000/x: manifest unknown", true},
		{"received unexpected HTTP status: 404 Not Found", true},
		{"StatusCode: 404", true},
		{"dial tcp 127.0.0.1:1: connect: connection refused", true},
		// A temporary file's name that holds the digits 404 is no 404.
		{`writing blob: storing blob to file "/var/tmp/container_images_storage4240496287/2": gzip: invalid header`, false},
		// Nor does a digest (a hostile layer's error in one suite run).
		{`adding layer with blob "sha256:b1c0bd07"/""/"sha256:d8bd798a25c404e69f768daef387d44574a74afc1cebeb6f62bc76108ed12ece": unpacking failed (error: exit status 1; output: no such file or directory)`, false},
		{"happened during read: Digest did not match", false},
	} {
		if got := notFound(c.msg); got != c.want {
			t.Errorf("notFound(%q) = %v, want %v", c.msg, got, c.want)
		}
	}
}
