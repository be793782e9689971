package config

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// excerptWidth bounds how much of a long line Excerpt shows on each side
// of the column, so that a one-line file of megabytes prints one screen.
const excerptWidth = 60

// Excerpt shows the line an error is about with a marker under its column,
// as compilers do, for example
//
//	server-addr = localhost:19190
//	              ^
//
// Each line is indented by four spaces, without a final newline. It is
// empty when the error is not about a line (only syntax errors are).
func (e *Error) Excerpt() string {
	if e.Line == 0 {
		return ""
	}
	line := e.Source
	col := e.Column - 1 // byte offset of the marker in line
	if col < 0 || col > len(line) {
		col = 0
	}
	start, end := 0, len(line)
	if col > excerptWidth {
		start = col - excerptWidth
	}
	if end-col > excerptWidth {
		end = col + excerptWidth
	}
	// Cut at rune boundaries so that a multi-byte character is not split.
	for start > 0 && !utf8.RuneStart(line[start]) {
		start--
	}
	for end < len(line) && !utf8.RuneStart(line[end]) {
		end++
	}
	var shown, marker strings.Builder
	if start > 0 {
		shown.WriteString("...")
		marker.WriteString("   ")
	}
	for i, r := range line[start:end] {
		printable := printableRune(r)
		shown.WriteRune(printable)
		if start+i < col {
			// A tab stays a tab under a tab, so the marker lines up
			// whatever the terminal's tab width.
			if printable == '\t' {
				marker.WriteByte('\t')
			} else {
				marker.WriteByte(' ')
			}
		}
	}
	if end < len(line) {
		shown.WriteString("...")
	}
	marker.WriteByte('^')
	return "    " + shown.String() + "\n    " + marker.String()
}

// printableRune replaces control characters (a broken file may hold any
// byte) so that printing the excerpt cannot drive the user's terminal.
func printableRune(r rune) rune {
	if r == '\t' || !unicode.IsControl(r) {
		return r
	}
	return utf8.RuneError
}
