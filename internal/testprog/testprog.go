// Package testprog finds the external programs that tests drive (curl,
// openssl, nginx, python3). A missing program skips a test, except on CI
// (CI=true), which installs them: there a missing program is a broken test
// setup and fails the test rather than letting it pass by skipping.
package testprog

import (
	"os"
	"os/exec"
	"testing"
)

// Need returns the path of program name, skipping the test when it is not
// installed (failing it on CI). debianPackage names the package that
// provides it, for the message.
func Need(t testing.TB, name, debianPackage string) string {
	t.Helper()
	path, ok := Find(t, name, debianPackage)
	if !ok {
		t.Skipf("%s not installed (Debian package %s)", name, debianPackage)
	}
	return path
}

// Find returns the path of program name, or false when it is not
// installed, for a test that runs on without it; on CI a missing program
// fails the test.
func Find(t testing.TB, name, debianPackage string) (string, bool) {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is required on CI (Debian package %s): %v", name, debianPackage, err)
		}
		return "", false
	}
	return path, true
}

// NeedPythonWebsockets returns a python3 that can import the websockets
// module, /usr/bin/python3 when it exists, skipping the test when there
// is none (failing it on CI).
func NeedPythonWebsockets(t testing.TB) string {
	t.Helper()
	python := "/usr/bin/python3"
	if _, err := os.Stat(python); err != nil {
		python = Need(t, "python3", "python3")
	}
	if out, err := exec.Command(python, "-c", "import websockets").CombinedOutput(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("python3 websockets is required on CI (Debian package python3-websockets): %v: %s", err, out)
		}
		t.Skipf("python3 websockets not installed (Debian package python3-websockets): %s", out)
	}
	return python
}
