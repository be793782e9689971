package endpoints

import (
	"errors"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/p2pconnet/connet/internal/identity"
	"github.com/p2pconnet/connet/internal/logs"
	"github.com/p2pconnet/connet/internal/netpath"
	"github.com/p2pconnet/connet/internal/peer"
	"github.com/p2pconnet/connet/internal/tunnel"
	"github.com/quic-go/quic-go"
)

// connLife observes one tunnelled connection from the moment it is handed
// out to its Close: with which peer, on which kind of path, how encrypted,
// how many bytes went each way, how long it lasted and how it ended. It is
// the one place that sees a connection's whole life, so its debug lines
// come from here, and so should any per-connection counters. It counts per
// Read and Write call, never per packet.
type connLife struct {
	log        *slog.Logger
	key        peer.EndpointKey
	peer       identity.ID
	kind       netpath.Kind
	remote     string
	encryption string
	opened     time.Time

	// sent and received count the bytes written to and read from the
	// tunnel by this end.
	sent, received atomic.Int64

	mu sync.Mutex
	// readEnd is how reading ended (io.EOF: the peer finished sending);
	// writeErr the first failed write; reset is set when this side
	// abandoned the connection (its other end, e.g. the local TCP client,
	// failed).
	readEnd, writeErr error
	reset             bool
	closed            bool
}

// openLife starts observing a connection of e with peer id on p.
func (e *Endpoint) openLife(id identity.ID, p netpath.Path) *connLife {
	l := &connLife{
		log:        e.table.cfg.Logger,
		key:        e.Key,
		peer:       id,
		kind:       p.Kind(),
		remote:     p.RemoteAddr().String(),
		encryption: e.pathEncryption(id, p),
		opened:     time.Now(),
	}
	l.log.Debug("connection opened", "name", e.Key.Name, "role", string(e.Key.Role), "peer", id,
		"path", string(l.kind), "remote", l.remote, "encryption", l.encryption)
	return l
}

func (l *connLife) read(n int, err error) {
	l.received.Add(int64(n))
	if err != nil {
		l.mu.Lock()
		if l.readEnd == nil {
			l.readEnd = err
		}
		l.mu.Unlock()
	}
}

func (l *connLife) wrote(n int, err error) {
	l.sent.Add(int64(n))
	if err != nil {
		l.mu.Lock()
		if l.writeErr == nil {
			l.writeErr = err
		}
		l.mu.Unlock()
	}
}

func (l *connLife) resetHere() {
	l.mu.Lock()
	l.reset = true
	l.mu.Unlock()
}

// close records the end of the connection, once.
func (l *connLife) close() {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return
	}
	l.closed = true
	end := l.endingLocked()
	l.mu.Unlock()
	l.log.Debug("connection closed", "name", l.key.Name, "role", string(l.key.Role), "peer", l.peer,
		"path", string(l.kind), "bytes_sent", l.sent.Load(), "bytes_received", l.received.Load(),
		"duration_ms", logs.Millis(time.Since(l.opened)), "end", end)
}

// endingLocked says how the connection ended: "eof" when the peer finished
// sending and nothing failed, "reset" when this side abandoned it (its
// local end failed), "reset by peer" when the peer did, "closed" when this
// side closed it before the peer finished (an HTTP source dropping an idle
// connection), or the error that ended it.
func (l *connLife) endingLocked() string {
	switch {
	case l.reset:
		return "reset"
	case l.readEnd != nil && !errors.Is(l.readEnd, io.EOF):
		return describeEnd(l.readEnd)
	case l.writeErr != nil:
		return describeEnd(l.writeErr)
	case l.readEnd != nil:
		return "eof"
	}
	return "closed"
}

func describeEnd(err error) string {
	var serr *quic.StreamError
	if errors.As(err, &serr) && serr.Remote {
		return "reset by peer"
	}
	return logs.Closed(err, "peer").Error()
}

// Conn is a tunnelled connection as handed to users: a net.Conn with
// CloseWrite, counted by its endpoint and observed by its connLife.
type Conn struct {
	*tunnel.Conn
	life *connLife
	once sync.Once
	done func()
}

func (t *Conn) Read(b []byte) (int, error) {
	n, err := t.Conn.Read(b)
	t.life.read(n, err)
	return n, err
}

func (t *Conn) Write(b []byte) (int, error) {
	n, err := t.Conn.Write(b)
	t.life.wrote(n, err)
	return n, err
}

// Reset abandons the connection; tunnel.Splice calls it when the other
// end failed.
func (t *Conn) Reset() {
	t.life.resetHere()
	t.Conn.Reset()
}

func (t *Conn) Close() error {
	t.once.Do(func() {
		t.done()
		t.life.close()
	})
	return t.Conn.Close()
}

// SentEarly counts n bytes sent on the stream before it was tracked (see
// tunnel.Early).
func (t *Conn) SentEarly(n int) { t.life.wrote(n, nil) }
