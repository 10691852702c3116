from glidemed.cli import main

main()
