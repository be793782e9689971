// Command doclinks checks the links between the project's documents:
// every relative link of README.md and docs/*.md must name a file that
// exists and, with a #fragment, a heading of that file (as GitHub makes
// anchors of headings). Its test runs it over this repository.
//
//	go run ./scripts/doclinks [ROOT]
package main

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"unicode"
)

var (
	fencedBlock = regexp.MustCompile("(?s)```.*?```")
	heading     = regexp.MustCompile(`(?m)^#{1,6} +(.*?) *$`)
	link        = regexp.MustCompile(`\]\(([^)\s]+)\)`)
	scheme      = regexp.MustCompile(`^[a-z][a-z0-9+.-]*:`)
)

// anchor is the fragment GitHub gives a heading: lower case, spaces as
// hyphens, and every character but letters, digits, '-' and '_' dropped.
func anchor(title string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(title) {
		switch {
		case r == ' ':
			b.WriteRune('-')
		case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r):
			b.WriteRune(r)
		}
	}
	return b.String()
}

// anchors returns the fragments of a document's headings; a repeated
// heading gets -1, -2, ... as on GitHub.
func anchors(text string) map[string]bool {
	out := map[string]bool{}
	seen := map[string]int{}
	for _, m := range heading.FindAllStringSubmatch(text, -1) {
		a := anchor(m[1])
		if n, dup := seen[a]; dup {
			seen[a] = n + 1
			a = fmt.Sprintf("%s-%d", a, n+1)
		} else {
			seen[a] = 0
		}
		out[a] = true
	}
	return out
}

// check returns one line per broken link of the documents under root.
func check(root string) ([]string, error) {
	docs, err := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	if err != nil {
		return nil, err
	}
	docs = append([]string{filepath.Join(root, "README.md")}, docs...)
	texts := map[string]string{}
	for _, d := range docs {
		b, err := os.ReadFile(d)
		if err != nil {
			return nil, err
		}
		// Code blocks hold neither headings nor links.
		texts[d] = fencedBlock.ReplaceAllString(string(b), "")
	}
	var broken []string
	for _, d := range docs {
		for _, m := range link.FindAllStringSubmatch(texts[d], -1) {
			if problem := resolve(d, m[1], texts); problem != "" {
				rel, _ := filepath.Rel(root, d)
				broken = append(broken, fmt.Sprintf("%s: %s: %s", rel, m[1], problem))
			}
		}
	}
	return broken, nil
}

// resolve says what is wrong with target, a link of document from, or "".
func resolve(from, target string, texts map[string]string) string {
	if scheme.MatchString(target) {
		return "" // a URL: not ours to check
	}
	path, fragment, _ := strings.Cut(target, "#")
	dest := from
	if path != "" {
		dest = filepath.Join(filepath.Dir(from), path)
		if _, err := os.Stat(dest); err != nil {
			return "no such file"
		}
	}
	if fragment == "" {
		return ""
	}
	text, ok := texts[dest]
	if !ok {
		return "an anchor into a file that is not checked"
	}
	if !anchors(text)[fragment] {
		return "no heading with that anchor"
	}
	return ""
}

func main() {
	root := "."
	if len(os.Args) > 1 {
		root = os.Args[1]
	}
	broken, err := check(root)
	if err != nil {
		fmt.Fprintln(os.Stderr, "doclinks:", err)
		os.Exit(1)
	}
	for _, b := range broken {
		fmt.Println(b)
	}
	if len(broken) > 0 {
		os.Exit(1)
	}
}
