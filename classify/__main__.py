from classify.cli import main

main()
