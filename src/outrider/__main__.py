from outrider.cli.main import main

main()
