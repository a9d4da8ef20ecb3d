from convtui.cli import main

raise SystemExit(main())
