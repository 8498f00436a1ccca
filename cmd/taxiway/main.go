// Command taxiway runs Taxiway's services and administers them:
// `taxiway core`, `taxiway tokenservice`, `taxiway migrate`, `taxiway sync`,
// the admin subcommands, and `taxiway local` for the whole stack on one machine.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"sort"
	"syscall"
)

// command is one subcommand. run gets the arguments after the name.
type command struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string) error
}

func allCommands() []command {
	var cmds []command
	cmds = append(cmds, coreCommands()...)
	cmds = append(cmds, tokenCommands()...)
	cmds = append(cmds, stackCommands()...)
	cmds = append(cmds, importCommands()...)
	cmds = append(cmds, healthcheckCommands()...)
	sort.Slice(cmds, func(i, j int) bool { return cmds[i].name < cmds[j].name })
	return cmds
}

func main() {
	cmds := allCommands()
	if len(os.Args) < 2 || os.Args[1] == "-h" || os.Args[1] == "--help" || os.Args[1] == "help" {
		usage(cmds)
		if len(os.Args) < 2 {
			os.Exit(2)
		}
		return
	}
	for _, c := range cmds {
		if c.name != os.Args[1] {
			continue
		}
		// SIGINT/SIGTERM cancel the context; servers then shut down gracefully.
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		err := c.run(ctx, os.Args[2:])
		stop()
		if errors.Is(err, flag.ErrHelp) {
			return
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "taxiway %s: %v\n", c.name, err)
			os.Exit(1)
		}
		return
	}
	fmt.Fprintf(os.Stderr, "taxiway: unknown command %q\n\n", os.Args[1])
	usage(cmds)
	os.Exit(2)
}

func usage(cmds []command) {
	fmt.Fprintln(os.Stderr, "usage: taxiway <command> [flags]\n\ncommands:")
	for _, c := range cmds {
		fmt.Fprintf(os.Stderr, "  %-14s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(os.Stderr, "\n`taxiway <command> -h` shows a command's flags; they may stand before or after its arguments.")
}

// envOr returns the environment variable name, or def when it is unset or
// empty. Every flag's default comes from its TAXIWAY_* variable this way.
func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
