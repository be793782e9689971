package config

// ControlSettings is the validated [control] section.
type ControlSettings struct {
	// ClientsTokens are the accepted client tokens (at least one).
	ClientsTokens []string
	// ClientsTokenRestrictions is either empty or parallel to ClientsTokens.
	ClientsTokenRestrictions []TokenRestriction
	// ClientsIngress lists the listeners for clients; there is at least one.
	ClientsIngress []Ingress

	// RelaysTokens are the accepted relay tokens; empty means no relay can
	// connect.
	RelaysTokens []string
	// RelaysTokenRestrictions is either empty or parallel to RelaysTokens.
	RelaysTokenRestrictions []CIDRRestriction
	// RelaysIngress lists the listeners for relays. It is empty when no
	// relay tokens and no [[control.relays-ingress]] are configured.
	RelaysIngress []Ingress

	// StatusAddr is where to serve status over HTTP; empty means disabled.
	StatusAddr string
	// StoreDir is where to persist state; empty means a fresh temporary
	// directory, as for ServerSettings.StoreDir.
	StoreDir string
}

// ControlSettings validates the [control] section, reading token files and
// TLS certificates. env supplies the store-dir fallbacks; it may be nil.
func (c *Config) ControlSettings(env func(string) string) (ControlSettings, error) {
	r := newResolver(c, env)
	s := r.control()
	if err := r.err(); err != nil {
		return ControlSettings{}, err
	}
	return s, nil
}

func (r *resolver) control() ControlSettings {
	cc := r.cfg.Control
	p := keyPath{"control"}
	var s ControlSettings

	s.ClientsTokens = r.tokenList(p.key("clients-tokens"), p.key("clients-tokens-file"), cc.ClientsTokens, cc.ClientsTokensFile)
	if len(s.ClientsTokens) == 0 && cc.ClientsTokensFile == "" {
		r.failf(p.key("clients-tokens"), "at least one client token is required: set clients-tokens or clients-tokens-file")
	}
	s.ClientsTokenRestrictions = r.tokenRestrictions(p.key("clients-token-restriction"), cc.ClientsTokenRestrictions, len(s.ClientsTokens))
	s.ClientsIngress = r.ingresses(p.key("clients-ingress"), cc.ClientsIngress, DefaultClientsAddr)

	// Relays are optional: a control server may serve direct-only clients.
	s.RelaysTokens = r.tokenList(p.key("relays-tokens"), p.key("relays-tokens-file"), cc.RelaysTokens, cc.RelaysTokensFile)
	s.RelaysTokenRestrictions = r.cidrRestrictions(p.key("relays-token-restriction"), cc.RelaysTokenRestrictions, len(s.RelaysTokens))
	if len(s.RelaysTokens) > 0 || len(cc.RelaysIngress) > 0 {
		s.RelaysIngress = r.ingresses(p.key("relays-ingress"), cc.RelaysIngress, DefaultRelaysAddr)
		for i, in := range cc.RelaysIngress {
			// Relays join over QUIC only: a relay without UDP could not
			// serve its QUIC clients anyway.
			if len(in.Transports) > 0 || in.TCPAddr != "" {
				r.failf(p.key("relays-ingress").index(i), "transports and tcp-addr apply to client ingresses: relays join over QUIC only")
			}
		}
		for i := range s.RelaysIngress {
			s.RelaysIngress[i].Transports = IngressTransports{QUIC: true}
		}
	}

	s.StatusAddr = r.listenAddr(p.key("status-addr"), cc.StatusAddr, "")
	s.StoreDir = storeDir(cc.StoreDir, r.env)
	return s
}
