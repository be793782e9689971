package portmap

import (
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestEpochReset(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name        string
		prev, cur   uint32
		elapsed     time.Duration
		wantRestart bool
	}{
		{"advanced with the clock", 1000, 1060, time.Minute, false},
		{"one second back is rounding", 1000, 999, 0, false},
		{"went back", 1000, 3, time.Minute, true},
		{"fell behind the clock (restarted in between)", 1000, 1010, time.Minute, true},
		{"ran ahead of the clock", 1000, 5000, time.Minute, true},
		{"long wait, small drift", 1000, 1000 + 3500, time.Hour, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := EpochReset(tc.prev, t0, tc.cur, t0.Add(tc.elapsed)); got != tc.wantRestart {
				t.Fatalf("EpochReset = %v, want %v", got, tc.wantRestart)
			}
		})
	}
}

func TestDefaultGateway(t *testing.T) {
	// /proc/net/route of a host whose default route goes via 192.168.1.1
	// on eth0, after a link route and a point-to-point default route.
	table := `Iface	Destination	Gateway 	Flags	RefCnt	Use	Metric	Mask		MTU	Window	IRTT
eth0	0001A8C0	00000000	0001	0	0	0	00FFFFFF	0	0	0
tun0	00000000	00000000	0001	0	0	50	00000000	0	0	0
eth0	00000000	0101A8C0	0003	0	0	100	00000000	0	0	0
`
	gw, err := defaultGateway(strings.NewReader(table))
	if err != nil {
		t.Fatal(err)
	}
	if want := netip.MustParseAddr("192.168.1.1"); gw != want {
		t.Fatalf("gateway %s, want %s", gw, want)
	}
	if _, err := defaultGateway(strings.NewReader(strings.SplitN(table, "\n", 3)[0] + "\n")); err == nil {
		t.Fatal("a table without a default route gave a gateway")
	}
}
