from siamkit.cli import main

raise SystemExit(main())
