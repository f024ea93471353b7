from sandbox._cli import main

main()
