from sipphones.cli.main import main

main()
