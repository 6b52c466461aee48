"""The ``embedtune`` command line: parse, load config, call the stage, print."""
