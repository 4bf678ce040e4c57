from daskem.app.cli import main

main(prog_name="daskem")
