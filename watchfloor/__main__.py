from watchfloor.cli import main

raise SystemExit(main())
