package e2ee

import (
	"context"
	"crypto/ed25519"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/flynn/noise"
	"github.com/p2pconnet/connet/internal/identity"
	"github.com/p2pconnet/connet/internal/netpath"
)

// dhxcp: a Noise NN handshake (ephemeral X25519 on both sides, no static
// keys) gives each connection fresh keys and a channel binding (the final
// handshake hash). Each side then signs the binding with the Ed25519 key
// of its pinned certificate, inside the first encrypted record, and checks
// the other's signature against the certificate it expects. A relay that
// runs its own handshake with each end gets two different bindings, so it
// cannot produce either signature, and nothing but handshake bytes and
// signatures flows before both ends are authenticated.
const dhxcpPrologue = "connet-dhxcp/1"

var dhxcpSuite = noise.NewCipherSuite(noise.DH25519, noise.CipherChaChaPoly, noise.HashSHA256)

// authMessage is what one side signs: a label naming its role, so a
// signature cannot be reflected back to its author, and the binding.
func authMessage(initiator bool, binding []byte) []byte {
	label := dhxcpPrologue + " responder "
	if initiator {
		label = dhxcpPrologue + " initiator "
	}
	return append([]byte(label), binding...)
}

// wrapDHXCP runs the dhxcp handshake over s: Noise NN for the keys, then
// each side's signature of the binding. ctx bounds it through s's
// deadlines.
func wrapDHXCP(ctx context.Context, s netpath.Stream, initiator bool, local *identity.Identity, peerDER []byte) (netpath.Stream, error) {
	localKey, ok := local.Cert.PrivateKey.(ed25519.PrivateKey)
	if !ok {
		return nil, errors.New("local identity is not an Ed25519 key")
	}
	peerKey, err := ed25519Key(peerDER)
	if err != nil {
		return nil, err
	}
	if d, ok := ctx.Deadline(); ok {
		_ = s.SetDeadline(d)
	}
	stop := context.AfterFunc(ctx, func() { _ = s.SetDeadline(time.Now()) })
	defer stop()

	r, binding, err := exchangeKeys(s, initiator)
	if err != nil {
		return nil, err
	}
	if err := proveIdentities(r, initiator, localKey, peerKey, binding); err != nil {
		if ctx.Err() != nil {
			return nil, context.Cause(ctx)
		}
		return nil, err
	}
	if !stop() && ctx.Err() != nil {
		return nil, context.Cause(ctx)
	}
	_ = s.SetDeadline(time.Time{})
	return r, nil
}

// exchangeKeys runs the Noise NN handshake over s and returns the records
// it keys and the handshake's channel binding.
func exchangeKeys(s netpath.Stream, initiator bool) (*records, []byte, error) {
	hs, err := noise.NewHandshakeState(noise.Config{
		CipherSuite: dhxcpSuite,
		Pattern:     noise.HandshakeNN,
		Initiator:   initiator,
		Prologue:    []byte(dhxcpPrologue),
	})
	if err != nil {
		return nil, nil, err
	}
	// Split yields the initiator-to-responder state first.
	var toResponder, toInitiator *noise.CipherState
	if initiator {
		toResponder, toInitiator, err = initiateNoise(s, hs)
	} else {
		toResponder, toInitiator, err = respondNoise(s, hs)
	}
	if err != nil {
		return nil, nil, err
	}
	if toResponder == nil || toInitiator == nil {
		return nil, nil, errors.New("handshake did not complete")
	}
	send, recv := toInitiator, toResponder
	if initiator {
		send, recv = toResponder, toInitiator
	}
	out, err := newChachaSealer(send)
	if err != nil {
		return nil, nil, err
	}
	in, err := newChachaSealer(recv)
	if err != nil {
		return nil, nil, err
	}
	return newRecords(s, out, in), hs.ChannelBinding(), nil
}

// initiateNoise sends the initiator's message and reads the responder's.
func initiateNoise(s netpath.Stream, hs *noise.HandshakeState) (toResponder, toInitiator *noise.CipherState, err error) {
	msg, _, _, err := hs.WriteMessage(nil, nil)
	if err != nil {
		return nil, nil, err
	}
	if err := writeFrame(s, msg); err != nil {
		return nil, nil, err
	}
	reply, err := readFrame(s)
	if err != nil {
		return nil, nil, err
	}
	if _, toResponder, toInitiator, err = hs.ReadMessage(nil, reply); err != nil {
		return nil, nil, fmt.Errorf("handshake: %w", err)
	}
	return toResponder, toInitiator, nil
}

// respondNoise reads the initiator's message and sends the responder's.
func respondNoise(s netpath.Stream, hs *noise.HandshakeState) (toResponder, toInitiator *noise.CipherState, err error) {
	first, err := readFrame(s)
	if err != nil {
		return nil, nil, err
	}
	if _, _, _, err := hs.ReadMessage(nil, first); err != nil {
		return nil, nil, fmt.Errorf("handshake: %w", err)
	}
	var msg []byte
	if msg, toResponder, toInitiator, err = hs.WriteMessage(nil, nil); err != nil {
		return nil, nil, err
	}
	if err := writeFrame(s, msg); err != nil {
		return nil, nil, err
	}
	return toResponder, toInitiator, nil
}

// proveIdentities exchanges the signatures of the binding over r. The
// responder proves itself first; the initiator answers only once it has
// checked that proof.
func proveIdentities(r *records, initiator bool, localKey ed25519.PrivateKey, peerKey ed25519.PublicKey, binding []byte) error {
	proveSelf := func() error {
		return r.writeRecord(recordAuth, ed25519.Sign(localKey, authMessage(initiator, binding)))
	}
	checkPeer := func() error {
		typ, sig, err := r.readRecord()
		if err != nil {
			return err
		}
		if typ != recordAuth || !ed25519.Verify(peerKey, authMessage(!initiator, binding), sig) {
			return errors.New("peer did not prove the pinned identity")
		}
		return nil
	}
	steps := []func() error{proveSelf, checkPeer}
	if initiator {
		steps = []func() error{checkPeer, proveSelf}
	}
	for _, step := range steps {
		if err := step(); err != nil {
			return err
		}
	}
	return nil
}

func ed25519Key(der []byte) (ed25519.PublicKey, error) {
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("peer certificate: %w", err)
	}
	key, ok := cert.PublicKey.(ed25519.PublicKey)
	if !ok {
		return nil, errors.New("peer certificate is not an Ed25519 key")
	}
	return key, nil
}

// Handshake messages travel as 2-byte length-prefixed frames.
const maxHandshakeFrame = 1024

func writeFrame(w io.Writer, msg []byte) error {
	buf := binary.BigEndian.AppendUint16(make([]byte, 0, 2+len(msg)), uint16(len(msg)))
	_, err := w.Write(append(buf, msg...))
	return err
}

func readFrame(r io.Reader) ([]byte, error) {
	var hdr [2]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, fmt.Errorf("handshake: %w", err)
	}
	n := binary.BigEndian.Uint16(hdr[:])
	if n > maxHandshakeFrame {
		return nil, fmt.Errorf("handshake: frame of %d bytes", n)
	}
	msg := make([]byte, n)
	if _, err := io.ReadFull(r, msg); err != nil {
		return nil, fmt.Errorf("handshake: %w", err)
	}
	return msg, nil
}
