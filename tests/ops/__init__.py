"""Tests of running it: the command line, make run, compose, logging."""
