package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
)

// envPrefix: every flag --some-name is also read from LUMEN_SOME_NAME.
const envPrefix = "LUMEN_"

// envName is the environment variable that backs a flag.
func envName(flagName string) string {
	return envPrefix + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// newFlagSet builds a flag set for a subcommand whose usage lists the
// environment variable of each flag.
func newFlagSet(name, synopsis string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: lumen %s\n\n%s\n\nflags (each also read from the LUMEN_* variable shown):\n", name, synopsis)
		fs.VisitAll(func(f *flag.Flag) {
			def := ""
			if f.DefValue != "" && f.DefValue != "false" {
				def = fmt.Sprintf(" (default %s)", f.DefValue)
			}
			fmt.Fprintf(stderr, "  --%s  [%s]\n      %s%s\n", f.Name, envName(f.Name), f.Usage, def)
		})
	}
	return fs
}

// parseFlags applies LUMEN_* environment variables and then the command
// line, so explicit flags win over the environment, which wins over
// defaults. Positional arguments are returned.
func parseFlags(fs *flag.FlagSet, args []string, getenv func(string) string) ([]string, error) {
	var errs []error
	fs.VisitAll(func(f *flag.Flag) {
		if v := getenv(envName(f.Name)); v != "" {
			if err := fs.Set(f.Name, v); err != nil {
				errs = append(errs, fmt.Errorf("%s=%q: %w", envName(f.Name), v, err))
			}
		}
	})
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	// Flags may follow positional arguments (lumen model info PATH
	// --json); everything after "--" is positional.
	var pos []string
	for {
		dash := slices.Index(args, "--")
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			break
		}
		if dash >= 0 && len(args)-dash-1 == len(rest) {
			pos = append(pos, rest...)
			break
		}
		pos, args = append(pos, rest[0]), rest[1:]
	}
	if len(pos) > 0 && pos[0] == "help" {
		fs.Usage()
		return nil, flag.ErrHelp
	}
	return pos, nil
}

// parseNoArgs is parseFlags for commands that take no positional
// arguments: one given is a usage error, not silently ignored.
func parseNoArgs(fs *flag.FlagSet, args []string, getenv func(string) string) error {
	rest, err := parseFlags(fs, args, getenv)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return usageError{fmt.Sprintf("%s: unexpected argument %q (it takes flags only; see lumen %s --help)", fs.Name(), rest[0], fs.Name())}
	}
	return nil
}

// isHelp reports whether arg asks a command group for its usage.
func isHelp(arg string) bool {
	return arg == "help" || arg == "-h" || arg == "--help" || arg == "-help"
}

// isTerminal reports whether f is a character device (a terminal), where
// progress bars may redraw themselves.
func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
