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
		{"happened during read: Digest did not match", false},
	} {
		if got := notFound(c.msg); got != c.want {
			t.Errorf("notFound(%q) = %v, want %v", c.msg, got, c.want)
		}
	}
}
