from provision.cli import run

run()
