from cnnvsdnn.cli import main

raise SystemExit(main())
