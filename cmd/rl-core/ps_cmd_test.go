package main

import "testing"

func TestPortsSummary(t *testing.T) {
	for _, c := range []struct {
		in   []string
		want string
	}{
		{nil, ""},
		{[]string{"0.0.0.0:8080->80/tcp"}, "0.0.0.0:8080->80/tcp"},
		// A run published alike is one range, ordered by container port.
		{[]string{"0.0.0.0:20001->30001/tcp", "0.0.0.0:20000->30000/tcp", "0.0.0.0:8080->80/tcp", "0.0.0.0:20002->30002/tcp"},
			"0.0.0.0:8080->80/tcp, 0.0.0.0:20000-20002->30000-30002/tcp"},
		// Not alike: another protocol, address, or a host port out of step.
		{[]string{"0.0.0.0:5353->53/udp", "0.0.0.0:5354->54/tcp", "127.0.0.1:5355->55/udp", "0.0.0.0:6000->56/udp", "[::1]:7000->57/udp", "[::1]:7001->58/udp"},
			"0.0.0.0:5353->53/udp, 0.0.0.0:5354->54/tcp, 127.0.0.1:5355->55/udp, 0.0.0.0:6000->56/udp, [::1]:7000-7001->57-58/udp"},
	} {
		if got := portsSummary(c.in); got != c.want {
			t.Errorf("portsSummary(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}
