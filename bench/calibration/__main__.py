from bench.calibration.run import main

main()
