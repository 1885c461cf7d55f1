from plantwire.cli import main

raise SystemExit(main())
