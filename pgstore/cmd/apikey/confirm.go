package main

import (
	"bufio"
	"fmt"
	"strings"
)

// confirm asks the question on stderr and reads the answer from stdin.
// With --yes (yes) it asks nothing. Without a terminal it refuses rather
// than guess: a script must say --yes. Only "y" or "yes" proceed.
func (a *app) confirm(yes bool, question string) error {
	if yes {
		return nil
	}
	if !a.interactive {
		return fmt.Errorf("%w: stdin is not a terminal to ask on; add --yes to go ahead", errRefused)
	}
	fmt.Fprintf(a.stderr, "%s [y/N] ", question)
	line, _ := bufio.NewReader(a.stdin).ReadString('\n')
	switch strings.ToLower(strings.TrimSpace(line)) {
	case "y", "yes":
		return nil
	}
	return fmt.Errorf("%w: nothing changed", errRefused)
}

// describe names a key in a question: its ID, name and owner.
func describeKey(id, name, owner string) string {
	s := fmt.Sprintf("%s (%q", id, name)
	if owner != "" {
		s += ", owner " + owner
	}
	return s + ")"
}
