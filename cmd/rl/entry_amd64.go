package main

// fastEntry is the entry point (entry_amd64.s); Go never calls it.
func fastEntry()
