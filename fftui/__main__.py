from fftui.cli import main

raise SystemExit(main())
