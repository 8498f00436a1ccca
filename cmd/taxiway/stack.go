package main

// stackCommands span the parts: migrate, sync, local.
func stackCommands() []command { return nil }
