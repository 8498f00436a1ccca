package main

// coreCommands are taxiicore's subcommands (filled in by the core work).
func coreCommands() []command { return nil }
