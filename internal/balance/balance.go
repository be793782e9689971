// Package balance decides which destination peers a source tries for a new
// connection, in what order, and how many: the spec's load balancer
// (lb-policy, lb-retry, lb-retry-max). It orders targets someone else has
// gathered and knows nothing of how paths are made.
package balance

import (
	"cmp"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/p2pconnet/connet/internal/identity"
	"github.com/p2pconnet/connet/internal/netpath"
)

// Policy orders the destination peers.
type Policy string

const (
	// Default is no lb-policy: every peer is tried, best path first, as
	// LeastLatency orders them (so the best peer takes every connection).
	Default Policy = ""
	// LeastLatency orders peers by their best path: healthy before silent,
	// direct before relayed, then by lower RTT.
	LeastLatency Policy = "least-latency"
	// LeastConns orders peers by the connections this source has open to
	// them, fewest first.
	LeastConns Policy = "least-conns"
	// RoundRobin gives each peer its turn.
	RoundRobin Policy = "round-robin"
	// Random shuffles the peers for every connection.
	Random Policy = "random"
)

// ParsePolicy accepts the config spelling.
func ParsePolicy(s string) (Policy, error) {
	switch p := Policy(s); p {
	case Default, LeastLatency, LeastConns, RoundRobin, Random:
		return p, nil
	}
	return "", fmt.Errorf("unknown lb-policy %q (want least-latency, least-conns, round-robin or random)", s)
}

// RetryPolicy says how many of the ordered peers are tried.
type RetryPolicy string

const (
	// Never tries the first peer only.
	Never RetryPolicy = ""
	// Count tries up to Max peers (default 2).
	Count RetryPolicy = "count"
	// Timed keeps trying peers for Max milliseconds (default 1000).
	Timed RetryPolicy = "timed"
	// All tries every peer.
	All RetryPolicy = "all"
)

// Defaults of lb-retry-max, from the spec.
const (
	DefaultCount  = 2
	DefaultTimeMs = 1000
)

// ParseRetry accepts the config spelling.
func ParseRetry(s string) (RetryPolicy, error) {
	switch r := RetryPolicy(s); r {
	case Never, Count, Timed, All:
		return r, nil
	}
	return "", fmt.Errorf("unknown lb-retry %q (want count, timed or all)", s)
}

// Retry is a retry policy with its limit.
type Retry struct {
	Policy RetryPolicy
	// Max is the number of peers (Count) or milliseconds (Timed); 0 means
	// the default. Other policies ignore it.
	Max int
}

// Effective applies the spec's rule that a source without any lb option
// tries every peer: the retry policy only means something once a policy is
// chosen.
func Effective(p Policy, r Retry) Retry {
	if p == Default && r.Policy == Never {
		return Retry{Policy: All}
	}
	return r
}

// Attempts is how many of n ordered peers may be tried.
func (r Retry) Attempts(n int) int {
	switch r.Policy {
	case Never:
		return min(n, 1)
	case Count:
		return min(n, cmp.Or(r.Max, DefaultCount))
	}
	return n
}

// Budget is how long a Timed retry keeps trying; 0 for the others.
func (r Retry) Budget() time.Duration {
	if r.Policy != Timed {
		return 0
	}
	return time.Duration(cmp.Or(r.Max, DefaultTimeMs)) * time.Millisecond
}

// Target is one destination peer and the paths to it that both ends'
// routes allow, best first.
type Target struct {
	Peer  identity.ID
	Paths []netpath.Path
	// Active is the number of connections this source has open to the
	// peer.
	Active int64
}

// healthy tells whether the target has a path that is not silent.
func (t Target) healthy() bool { return len(t.Paths) > 0 && !netpath.Stale(t.Paths[0]) }

// byLatency orders targets by their best paths.
func byLatency(a, b Target) int {
	if c := netpath.Better(a.Paths[0], b.Paths[0]); c != 0 {
		return c
	}
	return slices.Compare(a.Peer[:], b.Peer[:])
}

// Order returns the targets in the order a new connection tries them.
// Targets without paths are dropped. Whatever the policy, peers with a
// healthy path come before peers whose paths all went silent (probably
// dead). turn is the source's connection counter, for RoundRobin; rnd
// shuffles for Random (nil: the runtime's generator).
func Order(p Policy, targets []Target, turn uint64, rnd *rand.Rand) []Target {
	out := slices.DeleteFunc(slices.Clone(targets), func(t Target) bool { return len(t.Paths) == 0 })
	switch p {
	case LeastConns:
		slices.SortStableFunc(out, func(a, b Target) int {
			return cmp.Or(cmp.Compare(a.Active, b.Active), byLatency(a, b))
		})
	case RoundRobin:
		slices.SortFunc(out, func(a, b Target) int { return slices.Compare(a.Peer[:], b.Peer[:]) })
		if n := len(out); n > 0 {
			k := int(turn % uint64(n))
			out = slices.Concat(out[k:], out[:k])
		}
	case Random:
		shuffle := rand.Shuffle
		if rnd != nil {
			shuffle = rnd.Shuffle
		}
		shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	default:
		slices.SortFunc(out, byLatency)
	}
	// Stable, so each policy's order holds within both groups.
	slices.SortStableFunc(out, func(a, b Target) int {
		if ah, bh := a.healthy(), b.healthy(); ah != bh {
			if ah {
				return -1
			}
			return 1
		}
		return 0
	})
	return out
}
