package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"strings"

	"github.com/keygate/apikey"
)

var cmdCheck = &command{
	name:    "check",
	args:    "KEY|-",
	summary: "tell offline whether a string is one of our keys",
	help: `
Checks the string against the key format (--format or $APIKEY_FORMAT),
offline, without a store: which format and environment it is, and whether
its checksum is valid, for support ("is this even one of ours?"). It does
not say whether the key exists. Give - to read the key from stdin, so that
it stays out of the shell's history. Exit code 0 if it is ours, 1 if not.
The key is never printed.`,
	run: runCheck,
}

// maxCheckInput bounds what check reads from stdin.
const maxCheckInput = 4096

func runCheck(a *app, _ context.Context, fs *flag.FlagSet, args []string) error {
	fs.StringVar(&a.opts.format, "format", "", "the key format: "+strings.Join(formatNames(), ", ")+"; default $"+envFormat+", else default")
	args, err := a.parse(fs, args, 1, 1)
	if err != nil {
		return err
	}
	key := args[0]
	if key == "-" {
		line, err := bufio.NewReaderSize(a.stdin, maxCheckInput).ReadString('\n')
		if err != nil && line == "" {
			return usagef("no key on stdin")
		}
		key = line
	}
	key = strings.TrimSpace(key)
	ours, err := a.format()
	if err != nil {
		return err
	}
	t := newTable(a.stdout)
	defer t.Flush()
	env, perr := ours.format.Parse(key)
	if perr == nil {
		fmt.Fprintf(t, "format:\t%s\n", ours.name)
		fmt.Fprintf(t, "environment:\t%s\n", env)
		if ours.format == apikey.FormatDefault {
			fmt.Fprintf(t, "checksum:\tvalid\n")
		} else {
			fmt.Fprintf(t, "checksum:\tnone in this format\n")
		}
		fmt.Fprintf(t, "verdict:\tours (it has our format; whether it exists, only the store knows)\n")
		return nil
	}
	problem := "malformed"
	var fe *apikey.FormatError
	if errors.As(perr, &fe) {
		problem = fe.Problem
	}
	fmt.Fprintf(t, "format:\tnot %s (bad %s)\n", ours.name, problem)
	if problem == "checksum" {
		fmt.Fprintf(t, "checksum:\tINVALID: a typo, a truncated copy, or a made-up key\n")
	}
	for _, f := range knownFormats {
		if f.name == ours.name {
			continue
		}
		if env, err := f.format.Parse(key); err == nil {
			fmt.Fprintf(t, "looks like:\ta %s %s key (--format %s)\n", f.name, env, f.name)
		}
	}
	fmt.Fprintf(t, "verdict:\tnot ours\n")
	return fmt.Errorf("not one of ours: not a %s key (bad %s)", ours.name, problem)
}

var cmdPepper = &command{
	name:    "pepper",
	args:    "[--id ID]",
	summary: "generate a random 32-byte pepper; id:base64 goes to stdout",
	help: `
Generates a pepper: 32 random bytes, written to stdout as id:base64, the
form $APIKEY_PEPPERS takes. To rotate, put it first in the servers'
peppers (and this tool's), keeping the old ones after it until every key
has been re-filed under the new one.`,
	run: runPepper,
}

func runPepper(a *app, _ context.Context, fs *flag.FlagSet, args []string) error {
	id := fs.String("id", "", "the pepper's id, stored beside each digest; default p and today's date (p20260131)")
	if _, err := a.parse(fs, args, 0, 0); err != nil {
		return err
	}
	if *id == "" {
		*id = "p" + a.now().UTC().Format("20060102")
	}
	if strings.ContainsAny(*id, ":, \t\n") {
		return usagef("--id %q: no colon, comma or space", *id)
	}
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		return fmt.Errorf("random: %w", err)
	}
	if _, err := apikey.NewPepper(*id, secret); err != nil {
		return usagef("%w", err)
	}
	if _, err := fmt.Fprintf(a.stdout, "%s:%s\n", *id, base64.StdEncoding.EncodeToString(secret)); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	fmt.Fprintf(a.stderr, "Keep it in your secret manager; servers and this tool read it from $%s (current pepper first).\n", envPeppers)
	return nil
}
