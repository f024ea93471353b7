from sandbox.cli._app import main

main()
