package main

import (
	"flag"
	"fmt"
	"strings"
)

// parseFlags parses args with fs, taking flags wherever they stand, before,
// between or after the positional arguments (`taxiway account disable
// USER -database-url URL` as well as `... -database-url URL disable
// USER`): the flag package alone stops at the first positional argument.
// "--" ends the flags; what follows is positional, as are "-" and
// everything after it. want is how many positional arguments the command
// takes (-1: the caller checks); fs.Args() holds them afterwards.
func parseFlags(fs *flag.FlagSet, args []string, want int) error {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			return err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			break
		}
		// fs.Parse consumed a "--" just before rest: everything is positional.
		if consumed := len(args) - len(rest); consumed > 0 && args[consumed-1] == "--" {
			positional = append(positional, rest...)
			break
		}
		positional = append(positional, rest[0])
		args = rest[1:]
	}
	// Leave the positional arguments in fs.Args().
	if err := fs.Parse(append([]string{"--"}, positional...)); err != nil {
		return err
	}
	if want >= 0 && len(positional) != want {
		if want == 0 {
			return fmt.Errorf("%s takes flags only, got the argument(s) %s (taxiway %s -h lists the flags)",
				fs.Name(), strings.Join(quoted(positional), " "), fs.Name())
		}
		return fmt.Errorf("%s takes %d argument(s), got %d: %s", fs.Name(), want, len(positional), strings.Join(quoted(positional), " "))
	}
	return nil
}

func quoted(args []string) []string {
	out := make([]string, len(args))
	for i, a := range args {
		out[i] = fmt.Sprintf("%q", a)
	}
	return out
}
