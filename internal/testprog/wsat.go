package testprog

// PythonWebSocketAt returns the argv that runs python (one found by
// NeedPythonWebsockets) as a websockets client of url over a TCP connection
// to addr: the handshake names url's host in Host, whatever addr is, as a
// browser does for a name that resolves to addr (DNS rebinding), and sends
// origin in Origin when it is not empty. It sends one short binary message
// and prints "ok" when it comes back, or "status N" when the handshake is
// answered with HTTP status N instead of 101.
func PythonWebSocketAt(python, addr, url, origin string) []string {
	return []string{python, "-c", pythonWSAt, addr, url, origin}
}

// pythonWSAt uses the sync client of websockets ≥ 11, or the asyncio one
// of older releases (Debian 12 ships 10.4); both take a connected socket.
const pythonWSAt = `
import socket, sys
addr, url, origin = sys.argv[1], sys.argv[2], sys.argv[3] or None
host, port = addr.rsplit(":", 1)
msg = b"bytes for the service"
sock = socket.create_connection((host.strip("[]"), int(port)), timeout=20)
try:
    from websockets.sync.client import connect
except ImportError:
    connect = None
try:
    if connect:
        with connect(url, sock=sock, origin=origin) as ws:
            ws.send(msg)
            got = ws.recv(timeout=20)
    else:
        import asyncio, websockets
        async def main():
            async with websockets.connect(url, sock=sock, origin=origin) as ws:
                await ws.send(msg)
                return await asyncio.wait_for(ws.recv(), 20)
        got = asyncio.run(main())
except Exception as e:
    status = getattr(getattr(e, "response", None), "status_code", None) or getattr(e, "status_code", None)
    if status is None:
        raise
    print("status", status)
    sys.exit(0)
print("ok" if got == msg else "echo differs: %r" % got)
`
