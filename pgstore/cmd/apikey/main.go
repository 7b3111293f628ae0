package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"
)

func main() {
	a := &app{
		stdin:       os.Stdin,
		stdout:      os.Stdout,
		stderr:      os.Stderr,
		getenv:      os.Getenv,
		interactive: isTerminal(os.Stdin),
		now:         time.Now,
	}
	os.Exit(a.run(context.Background(), os.Args[1:]))
}

// app is one run of the tool: its streams and environment, so that tests
// run commands in-process.
type app struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) string
	// interactive says that stdin is a terminal, where a person can
	// confirm a destructive action.
	interactive bool
	now         func() time.Time

	opts options  // the common flags, once parsed
	cmd  *command // the command running
}

// command is one of the tool's commands.
type command struct {
	name    string
	args    string // the synopsis after the name
	summary string
	help    string // what it does, for --help
	// common says the command takes the common flags (--store, --format,
	// --declared-scopes, --timeout).
	common bool
	// run runs the command: flags are defined on fs, which run parses
	// with a.parse.
	run func(a *app, ctx context.Context, fs *flag.FlagSet, args []string) error
}

// commands are the tool's commands, in the order help lists them.
var commands []*command

func init() {
	commands = []*command{
		cmdCreate, cmdList, cmdShow, cmdUpdate, cmdRoll, cmdRevoke, cmdDisable, cmdEnable,
		cmdUsage, cmdAudit, cmdMigrate, cmdCheck, cmdPepper,
		{name: "help", args: "[COMMAND]", summary: "list the commands, or describe one", run: runHelp},
	}
}

func lookupCommand(name string) *command {
	for _, c := range commands {
		if c.name == name {
			return c
		}
	}
	return nil
}

// run runs the command line args (without the program name) and returns
// the exit code.
func (a *app) run(ctx context.Context, args []string) int {
	lead, name, rest := splitCommand(args)
	if name == "" {
		a.usage()
		if len(lead) > 0 {
			fmt.Fprintln(a.stderr, "apikey: no command")
		}
		return exitUsage
	}
	if name == "-h" || name == "--help" || name == "-help" {
		a.usage()
		return exitOK
	}
	c := lookupCommand(name)
	if c == nil {
		fmt.Fprintf(a.stderr, "apikey: unknown command %q; apikey help lists them\n", name)
		return exitUsage
	}
	a.cmd = c
	fs := flag.NewFlagSet("apikey "+c.name, flag.ContinueOnError)
	fs.SetOutput(a.stderr)
	fs.Usage = func() { a.commandHelp(c, fs) }
	if c.common {
		a.opts.define(fs)
	}
	err := c.run(a, ctx, fs, append(lead, rest...))
	switch {
	case errors.Is(err, flag.ErrHelp):
		return exitOK
	case err != nil && exitCode(err) == exitUsage && isFlagError(err):
		return exitUsage // the flag package printed it, and the usage
	case err != nil:
		fmt.Fprintf(a.stderr, "apikey %s: %v\n", c.name, err)
		if exitCode(err) == exitUsage {
			fmt.Fprintf(a.stderr, "apikey %s --help describes its use\n", c.name)
		}
	}
	return exitCode(err)
}

// commonValueFlags are the common flags that take a value: a command line
// may give them before the command.
var commonValueFlags = map[string]bool{"store": true, "format": true, "declared-scopes": true, "timeout": true}

// splitCommand splits args into the common flags before the command, the
// command's name and what follows it.
func splitCommand(args []string) (lead []string, name string, rest []string) {
	for i := 0; i < len(args); i++ {
		arg := args[i]
		if !strings.HasPrefix(arg, "-") || arg == "-" {
			return args[:i:i], arg, args[i+1:]
		}
		flagName, _, hasValue := strings.Cut(strings.TrimLeft(arg, "-"), "=")
		if !commonValueFlags[flagName] {
			return nil, arg, args[i+1:] // -h, or an unknown flag: reported as a command
		}
		if !hasValue {
			i++
		}
	}
	return args, "", nil
}

// flagError is an error of the flag package, which has printed it.
type flagError struct{ err error }

func (e *flagError) Error() string { return e.err.Error() }

func isFlagError(err error) bool {
	var fe *flagError
	return errors.As(err, &fe)
}

// parse parses a command's flags, which may come before, between and after
// its arguments ("--" ends the flags), and checks the number of arguments.
func (a *app) parse(fs *flag.FlagSet, args []string, minArgs, maxArgs int) ([]string, error) {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, &usageError{err: &flagError{err: err}}
		}
		rem := fs.Args()
		if len(rem) == 0 {
			break
		}
		if consumed := args[:len(args)-len(rem)]; len(consumed) > 0 && consumed[len(consumed)-1] == "--" {
			positional = append(positional, rem...)
			break
		}
		positional = append(positional, rem[0])
		args = rem[1:]
	}
	switch {
	case len(positional) < minArgs:
		return nil, usagef("missing argument; usage: %s %s", fs.Name(), a.cmd.args)
	case len(positional) > maxArgs:
		return nil, usagef("unexpected argument %q", positional[maxArgs])
	}
	return positional, nil
}

// usage lists the commands on stderr.
func (a *app) usage() {
	fmt.Fprint(a.stderr, "apikey manages the API keys of a keygate/apikey server.\n\nUsage: apikey COMMAND [flags] [arguments]\n\nCommands:\n")
	w := tabwriter.NewWriter(a.stderr, 0, 4, 2, ' ', 0)
	for _, c := range commands {
		fmt.Fprintf(w, "  %s\t%s\n", c.name, c.summary)
	}
	_ = w.Flush()
	fmt.Fprint(a.stderr, `
The store is --store or $APIKEY_STORE: postgres://… or a key file
(file:/path/keys.json or a bare path). Peppers come from $APIKEY_PEPPERS
(id:base64,… the current one first), the key format from --format or
$APIKEY_FORMAT. "apikey COMMAND --help" describes a command.
`+exitHelp)
}

// commandHelp describes a command on stderr.
func (a *app) commandHelp(c *command, fs *flag.FlagSet) {
	fmt.Fprintf(a.stderr, "Usage: apikey %s %s\n\n%s\n", c.name, c.args, c.summary)
	if c.help != "" {
		fmt.Fprintf(a.stderr, "\n%s\n", strings.TrimSpace(c.help))
	}
	hasFlags := false
	fs.VisitAll(func(*flag.Flag) { hasFlags = true })
	if hasFlags {
		fmt.Fprint(a.stderr, "\nFlags:\n")
		fs.PrintDefaults()
	}
	fmt.Fprint(a.stderr, exitHelp)
}

func runHelp(a *app, _ context.Context, fs *flag.FlagSet, args []string) error {
	args, err := a.parse(fs, args, 0, 1)
	if err != nil {
		return err
	}
	if len(args) == 0 {
		a.usage()
		return nil
	}
	c := lookupCommand(args[0])
	if c == nil {
		return usagef("unknown command %q", args[0])
	}
	cfs := flag.NewFlagSet("apikey "+c.name, flag.ContinueOnError)
	cfs.SetOutput(a.stderr)
	if c.common {
		var o options
		o.define(cfs)
	}
	// The command defines its own flags when it runs: run it with --help.
	a.cmd = c
	cfs.Usage = func() { a.commandHelp(c, cfs) }
	if err := c.run(a, context.Background(), cfs, []string{"--help"}); !errors.Is(err, flag.ErrHelp) {
		a.commandHelp(c, cfs)
	}
	return nil
}
