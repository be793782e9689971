package testprog

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// PythonWebSocketEcho returns the argv that runs python (one found by
// NeedPythonWebsockets) as a websockets client of url: it sends 100 kB as
// one binary message, reads the echo, and prints "ok 102400" when the
// echo matches (exiting non-zero otherwise).
func PythonWebSocketEcho(python, url string) []string {
	return []string{python, "-c", pythonWSClient, url}
}

// pythonWSClient sends 100 kB as one binary message and reads the echo,
// which may come back in several messages. It uses the sync client of
// websockets ≥ 11, or the asyncio one of older releases (Debian 12 ships
// 10.4).
const pythonWSClient = `
import sys
url = sys.argv[1]
msg = bytes(range(256)) * 400
def check(got):
    if got != msg:
        sys.exit("echo differs: %d of %d bytes" % (len(got), len(msg)))
    print("ok", len(got))
try:
    from websockets.sync.client import connect
except ImportError:
    connect = None
if connect:
    with connect(url, max_size=None) as ws:
        ws.send(msg)
        got = b""
        for _ in range(10000):
            if len(got) >= len(msg):
                break
            got += ws.recv(timeout=20)
        check(got)
else:
    import asyncio, websockets
    async def main():
        async with websockets.connect(url, max_size=None) as ws:
            await ws.send(msg)
            got = b""
            for _ in range(10000):
                if len(got) >= len(msg):
                    break
                got += await asyncio.wait_for(ws.recv(), 20)
            check(got)
    asyncio.run(main())
`

// NginxProxyProto writes dir/nginx.conf for an nginx that listens on
// listen (host:port) expecting a PROXY protocol header, answers every
// request with "pp=<addr>:<port>\n" of the address the header carries, and
// logs `<addr>:<port> "<request>" <status>` to accessLog. Its pid file,
// error log and temp directories go in dir. It returns the arguments
// (after the program name) that run this nginx in the foreground.
//
// Run as root, nginx's workers run as root too: they must reach dir, a
// test's private temporary directory.
func NginxProxyProto(dir, listen, accessLog string) ([]string, error) {
	user := ""
	if os.Geteuid() == 0 {
		user = "user root;"
	}
	conf := fmt.Sprintf(`%[1]s
worker_processes 1;
pid %[2]s/nginx.pid;
error_log %[2]s/error.log info;
events { worker_connections 64; }
http {
	client_body_temp_path %[2]s/body;
	proxy_temp_path %[2]s/proxy;
	fastcgi_temp_path %[2]s/fastcgi;
	log_format pp '$proxy_protocol_addr:$proxy_protocol_port "$request" $status';
	access_log %[3]s pp;
	server {
		listen %[4]s proxy_protocol;
		location / { return 200 "pp=$proxy_protocol_addr:$proxy_protocol_port\n"; }
	}
}
`, user, dir, accessLog, listen)
	confPath := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o600); err != nil {
		return nil, err
	}
	return []string{"-p", dir, "-c", confPath, "-e", filepath.Join(dir, "error.log"), "-g", "daemon off;"}, nil
}

// SClientArgs returns the arguments (after the program name) of an
// openssl s_client that connects to addr quietly and gives up on a server
// certificate it cannot verify; extra adds more.
func SClientArgs(addr string, extra ...string) []string {
	return append([]string{"s_client", "-connect", addr, "-quiet", "-verify_return_error"}, extra...)
}

// sClientLimit bounds an SClientEcho run.
const sClientLimit = 30 * time.Second

// SClientEcho starts cmd, an openssl s_client made with SClientArgs, sends
// it a line and waits for the line to come back (echoed) or for s_client
// to end; output is what s_client printed. stdin stays open until the echo
// is read, since s_client hangs up on end of input. A run longer than 30
// seconds is killed (by its PID).
func SClientEcho(t testing.TB, cmd *exec.Cmd) (echoed bool, output string) {
	t.Helper()
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	timer := time.AfterFunc(sClientLimit, func() { _ = cmd.Process.Kill() })
	defer timer.Stop()
	_, _ = stdin.Write([]byte("hello from openssl\n"))
	var lines []string
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if sc.Text() == "hello from openssl" {
			echoed = true
			break
		}
	}
	_ = stdin.Close()
	if echoed {
		_ = cmd.Process.Kill()
	}
	_ = cmd.Wait()
	return echoed, strings.Join(lines, "\n") + "\n" + stderr.String()
}
