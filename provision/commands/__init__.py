"""One module per ``provision`` subcommand (see provision.cli.COMMANDS)."""
