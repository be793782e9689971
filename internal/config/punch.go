package config

// BirthdayPunch turns the client's part in birthday punches through
// symmetric NATs on or off (the birthday-punch key, our addition to the
// spec). Off, the client sends no probes and its peers send it none:
// some networks take the burst of probes for a port scan.
type BirthdayPunch string

// The birthday-punch values.
const (
	BirthdayPunchEnabled  BirthdayPunch = "enabled"
	BirthdayPunchDisabled BirthdayPunch = "disabled"
)

// birthdayPunch reads client.birthday-punch (default enabled).
func (r *resolver) birthdayPunch(p keyPath, raw string) BirthdayPunch {
	return oneOf(r, p.key("birthday-punch"), raw, BirthdayPunchEnabled, BirthdayPunchEnabled, BirthdayPunchDisabled)
}
