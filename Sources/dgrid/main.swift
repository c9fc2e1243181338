import DGridCLI

DGrid.runFront()
