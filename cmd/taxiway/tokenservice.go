package main

// tokenCommands are the token service's subcommands (filled in by the token service work).
func tokenCommands() []command { return nil }
