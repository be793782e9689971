package main

import (
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"strings"

	"github.com/p2pconnet/connet"
)

// hintError is an error that retrying cannot fix, with what to change.
type hintError struct {
	err  error
	hint string
}

func (e *hintError) Error() string { return e.err.Error() }
func (e *hintError) Unwrap() error { return e.err }

// trustHint adds a hint to an error wrapping connet.ErrUntrustedServer,
// naming the settings (casKey, nameKey: config keys, which are also the
// flags' names) of the command that dialed the control server. Other errors
// are returned as they are.
func trustHint(err error, casKey, nameKey string) error {
	if !errors.Is(err, connet.ErrUntrustedServer) {
		return err
	}
	var (
		host    x509.HostnameError
		unknown x509.UnknownAuthorityError
		roots   x509.SystemRootsError
		invalid x509.CertificateInvalidError
		hint    string
	)
	switch {
	case errors.As(err, &host):
		hint = fmt.Sprintf("the certificate is for %s, not %q: set %s (--%s) to one of those names",
			certNames(host.Certificate), host.Host, nameKey, nameKey)
	case errors.As(err, &unknown), errors.As(err, &roots):
		hint = fmt.Sprintf("set %s (--%s) to the PEM file of the CA that signed the server's certificate "+
			"(for a self-signed certificate, the certificate itself)", casKey, casKey)
	case errors.As(err, &invalid):
		hint = "the server's certificate itself cannot be used (expired, not yet valid, or not for servers): replace it on the server"
	default:
		hint = fmt.Sprintf("check %s and %s", casKey, nameKey)
	}
	return &hintError{err: err, hint: hint}
}

// certNames lists the names a certificate is valid for.
func certNames(c *x509.Certificate) string {
	if c == nil {
		return "other names"
	}
	names := append([]string{}, c.DNSNames...)
	for _, ip := range c.IPAddresses {
		names = append(names, net.IP(ip).String())
	}
	if len(names) == 0 {
		return "no name"
	}
	return strings.Join(names, ", ")
}
