from ecgd.cli import main

raise SystemExit(main())
