from daskem.cli import main

main(prog_name="daskem")
