from uptimed.cli import main

raise SystemExit(main())
