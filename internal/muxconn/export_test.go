package muxconn

// WindowsHeld is what c's stream windows hold in their budget; 0 for a
// connection without a budget.
func WindowsHeld(c Conn) int64 {
	if m, ok := c.(*muxConn); ok && m.windows != nil {
		m.windows.mu.Lock()
		defer m.windows.mu.Unlock()
		return m.windows.reserved
	}
	return 0
}
